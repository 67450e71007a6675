// The embedded form (GET /embed) tells the board page that framed it how
// tall it is, so that /embed.js can size the frame. It posts only to the
// board's origin, which the server puts in data-parent-origin when it is
// one of JOBALERT_ALLOWED_ORIGINS; otherwise it says nothing.
(function () {
  var parent = document.body.getAttribute("data-parent-origin");
  if (!parent || window.parent === window) return;
  var last = 0;
  function send() {
    var h = Math.ceil(document.body.getBoundingClientRect().height);
    if (h === last) return;
    last = h;
    window.parent.postMessage({ type: "jobalert:height", height: h }, parent);
  }
  if (window.ResizeObserver) new ResizeObserver(send).observe(document.body);
  window.addEventListener("load", send);
  send();
})();
