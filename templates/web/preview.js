// The live preview of the subscribe form: as the visitor types, it asks
// POST /v1/preview (debounced) how many recent jobs the filter matches and
// shows them in #preview. Without JavaScript the form's Preview button
// asks the server for the same, in a page.
(function () {
  var form = document.getElementById("signup");
  var out = document.getElementById("preview");
  if (!form || !out || !window.fetch || !window.FormData) return;
  var timer = null, seq = 0;

  function lines(v) {
    return String(v || "").split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
  }
  function filter() {
    var fd = new FormData(form), f = {};
    var kw = String(fd.get("keywords") || "").trim();
    if (kw) f.keywords = kw;
    var lists = { exclude_keywords: "exclude_keywords", companies: "companies", exclude_companies: "exclude_companies", tags: "tags" };
    Object.keys(lists).forEach(function (k) {
      var l = lines(fd.get(lists[k]));
      if (l.length) f[k] = l;
    });
    var visa = fd.getAll("visa_types");
    if (visa.length) f.visa_types = visa;
    if (visa.length && fd.get("include_unknown_visa")) f.include_unknown_visa = true;
    var locs = lines(fd.get("locations"));
    if (fd.get("remote")) locs.push("remote");
    if (locs.length) f.locations = locs;
    var sal = String(fd.get("min_salary") || "").replace(/[,_ $]/g, "");
    if (/^[0-9]+$/.test(sal)) f.min_salary = Number(sal);
    var sen = fd.getAll("seniority");
    if (sen.length) f.seniority = sen;
    return f;
  }
  function positive(f) {
    return !!(f.keywords || f.visa_types || f.locations || f.companies || f.tags || f.seniority || f.min_salary);
  }
  function ago(iso) {
    var days = Math.floor((Date.now() - Date.parse(iso)) / 864e5);
    if (days < 1) return "today";
    if (days === 1) return "yesterday";
    if (days < 14) return days + " days ago";
    return Math.floor(days / 7) + " weeks ago";
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function show(res) {
    out.textContent = "";
    var p = el("p");
    p.appendChild(el("strong", null, res.last_7_days + (res.last_7_days === 1 ? " job" : " jobs") + " last week"));
    p.appendChild(document.createTextNode(", " + res.last_30_days + " in the last 30 days."));
    out.appendChild(p);
    if (!res.newest || !res.newest.length) return;
    out.appendChild(el("p", "hint", "Newest:"));
    var ul = el("ul", "newest");
    res.newest.forEach(function (j) {
      var li = el("li");
      li.appendChild(el("span", "job", j.title));
      li.appendChild(document.createTextNode(" · " + j.company + " "));
      li.appendChild(el("span", "hint", ago(j.posted_at) + (j.sponsorship === "unknown" ? " · sponsorship not stated" : "")));
      ul.appendChild(li);
    });
    out.appendChild(ul);
  }
  function showError(body) {
    out.textContent = "";
    var fields = body && body.error && body.error.fields;
    var msg = fields ? Object.keys(fields).map(function (k) { return fields[k]; }).join(" ") : "No preview right now.";
    out.appendChild(el("p", "hint", msg));
  }
  function run() {
    var f = filter(), my = ++seq;
    if (!positive(f)) {
      out.textContent = "";
      return;
    }
    fetch("/v1/preview", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ filter: f }) })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, b: b }; }); })
      .then(function (x) {
        if (my !== seq) return; // a newer request is on its way
        if (x.ok) show(x.b); else showError(x.b);
      })
      .catch(function () { /* keep what is shown */ });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(run, 350);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
