// jobalert's embeddable sign-up form: put
//   <script src="https://ALERTS.EXAMPLE/embed.js?keywords=backend+engineer&visa=H-1B" async></script>
// where the form should appear (docs/embed.md). The query string of src,
// and the data-search attribute, fill the form in (the names of the
// subscribe page's search URL). The form's page must list this page's
// origin in JOBALERT_ALLOWED_ORIGINS, or the browser will not show it.
(function () {
  var me = document.currentScript;
  if (!me || !me.src || !window.URL || !window.URLSearchParams) return;
  var src = new URL(me.src, location.href);
  var origin = src.origin;
  var q = new URLSearchParams(src.search);
  var extra = me.getAttribute("data-search");
  if (extra) new URLSearchParams(extra).forEach(function (v, k) { q.append(k, v); });
  q.set("parent", location.origin);
  var f = document.createElement("iframe");
  f.src = origin + "/embed?" + q.toString();
  f.title = me.getAttribute("data-title") || "Get job alerts for this search";
  f.style.width = "100%";
  f.style.border = "0";
  f.style.height = "720px";
  f.setAttribute("referrerpolicy", "no-referrer");
  me.parentNode.insertBefore(f, me.nextSibling);
  window.addEventListener("message", function (e) {
    if (e.origin !== origin || e.source !== f.contentWindow) return;
    var d = e.data;
    if (!d || d.type !== "jobalert:height" || typeof d.height !== "number" || !isFinite(d.height)) return;
    f.style.height = Math.max(120, Math.min(6000, Math.ceil(d.height))) + "px";
  });
})();
