// cardpos console: the only script, served by the console (no inline scripts: the CSP forbids them).
// - forms with data-confirm ask before they submit (destructive actions);
// - a file input with data-fills="ID" loads the chosen text file into that textarea (rules upload);
// - the alerts page polls /alerts/feed and adds new alerts at the top without a reload; every page shows the
//   number of open alerts next to "Alerts" in the navigation.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("change", function (event) {
  var input = event.target;
  var target = input.getAttribute && input.getAttribute("data-fills");
  if (!target || !input.files || !input.files[0]) {
    return;
  }
  var reader = new FileReader();
  reader.onload = function () {
    document.getElementById(target).value = String(reader.result);
  };
  reader.readAsText(input.files[0]);
});

(function () {
  var badge = document.getElementById("open-alerts");
  if (!badge) {
    return;
  }
  var live = document.getElementById("alerts-live");
  var table = document.getElementById("alerts-table");
  var latest = live ? Number(live.getAttribute("data-latest")) || 0 : 0;
  var addRows = live && table && live.getAttribute("data-filtered") !== "yes";
  var started = false;

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    td.textContent = text;
    return td;
  }

  function link(text, url) {
    var a = document.createElement("a");
    a.href = url;
    a.textContent = text;
    return a;
  }

  function addRow(alert) {
    var body = table.tBodies[0];
    var empty = body.querySelector("tr.empty");
    if (empty) {
      empty.remove();
    }
    var tr = document.createElement("tr");
    tr.className = "fresh sev-" + alert.severity;
    tr.setAttribute("data-alert", String(alert.id));
    var id = cell("");
    id.appendChild(link(String(alert.id), alert.url));
    var sev = cell("");
    var span = document.createElement("span");
    span.className = "sev sev-" + alert.severity;
    span.textContent = alert.severity_text;
    sev.appendChild(span);
    var summary = cell("", "wrap");
    summary.appendChild(link(alert.summary, alert.url));
    [id, sev, cell(alert.rule), summary, cell(alert.status_text), cell(String(alert.count), "num"),
     cell(alert.last_seen)].forEach(function (td) { tr.appendChild(td); });
    body.insertBefore(tr, body.firstChild);
  }

  function poll() {
    fetch("/alerts/feed?after=" + latest, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) {
        if (!data) {
          return;
        }
        if (started && addRows) {
          data.alerts.forEach(addRow);
        }
        started = true;
        latest = data.latest;
        badge.textContent = String(data.open);
        badge.hidden = data.open === 0;
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  poll();
  window.setInterval(poll, 5000);
}());
