// kinehook dashboard: confirmations and live updates. The pages work without
// this script; it only adds convenience.
(function () {
  "use strict";

  // The endpoint form shows the URL for a webhook and config and
  // credentials for an event destination (without the script, both show).
  function showTypeFields(sel) {
    var webhook = sel.value === "webhook";
    sel.form.querySelectorAll("[data-for-type]").forEach(function (el) {
      el.hidden = (el.getAttribute("data-for-type") === "webhook") !== webhook;
    });
  }
  document.querySelectorAll("select[data-endpoint-type]").forEach(function (sel) {
    showTypeFields(sel);
    sel.addEventListener("change", function () { showTypeFields(sel); });
  });

  // Forms with data-confirm ask before submitting.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  var src = document.body.getAttribute("data-live-src");
  var dot = document.querySelector("[data-live-status]");
  if (!src || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }

  var busy = false;
  var again = false;

  // refresh reloads the page in the background and swaps in every live
  // region, keeping the open/closed state of keyed <details> elements.
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { headers: { "X-Kinehook-Live": "1" }, credentials: "same-origin" })
      .then(function (res) {
        if (res.redirected || !res.ok) {
          throw new Error("refresh: HTTP " + res.status);
        }
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region][id]").forEach(function (region) {
          if (region.contains(document.activeElement) && document.activeElement !== document.body) {
            return; // do not pull the ground from under the user's keyboard focus
          }
          var fresh = doc.getElementById(region.id);
          if (!fresh) {
            return;
          }
          var open = {};
          region.querySelectorAll("details[data-key]").forEach(function (d) {
            open[d.getAttribute("data-key")] = d.open;
          });
          region.innerHTML = fresh.innerHTML;
          region.querySelectorAll("details[data-key]").forEach(function (d) {
            var k = d.getAttribute("data-key");
            if (Object.prototype.hasOwnProperty.call(open, k)) {
              d.open = open[k];
            }
          });
          region.classList.remove("updated");
          void region.offsetWidth; // restart the highlight animation
          region.classList.add("updated");
        });
        document.body.setAttribute("data-live-updated", String(Date.now()));
      })
      .catch(function () { /* the next change event tries again */ })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var es = new EventSource(src);
  var leaving = false;
  // Leaving the page (a link, a form such as sign-out) ends the stream, so
  // its last messages cannot act on a page that is going away.
  window.addEventListener("beforeunload", function () {
    leaving = true;
    es.close();
  });
  es.addEventListener("ready", function () {
    if (dot) {
      dot.hidden = false;
      dot.textContent = "live";
      dot.classList.remove("off");
    }
    document.body.setAttribute("data-live", "on");
  });
  es.addEventListener("change", refresh);
  es.addEventListener("signedout", function () {
    es.close();
    if (!leaving) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
    }
  });
  es.onerror = function () {
    if (dot && !leaving) {
      dot.textContent = "offline";
      dot.classList.add("off");
    }
  };
})();
