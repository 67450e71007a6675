// Fills the time zone field of the subscribe form with the browser's own
// zone, unless the person already chose one. Without JavaScript the field
// keeps its server-side default.
(function () {
  var f = document.getElementById("timezone");
  if (!f || f.getAttribute("data-auto") !== "1") return;
  try {
    var z = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (z) f.value = z;
  } catch (e) { /* keep the default */ }
})();
