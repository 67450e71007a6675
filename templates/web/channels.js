// Shows the URL input of a channel only while its box is ticked, and the
// instant alert options only while "As they appear" is chosen. Without
// JavaScript everything stays visible and the server ignores what does
// not apply (a URL of an unticked channel, quiet hours of a daily alert).
(function () {
  function toggle(box) {
    var opts = document.getElementById(box.getAttribute("data-opts"));
    if (opts) opts.hidden = !box.checked;
  }
  var boxes = document.querySelectorAll('input[name="channels"][data-opts]');
  for (var i = 0; i < boxes.length; i++) {
    (function (box) {
      toggle(box);
      box.addEventListener("change", function () { toggle(box); });
    })(boxes[i]);
  }
  var instant = document.getElementById("instant-options");
  var freqs = document.querySelectorAll('input[name="frequency"]');
  function showInstant() {
    if (!instant) return;
    var on = false;
    for (var j = 0; j < freqs.length; j++) {
      if (freqs[j].checked && freqs[j].value === "instant") on = true;
    }
    instant.hidden = !on;
  }
  for (var k = 0; k < freqs.length; k++) freqs[k].addEventListener("change", showInstant);
  showInstant();
})();
