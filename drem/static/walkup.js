// Walk-up enrolment on the timekeeper console: enrol a racer by name (created when new) in
// the console's event, then tell the console to reload its racer list and offer the slip.
(function () {
  "use strict";
  const root = document.getElementById("walkup");
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  $("walkup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {username: $("walkup-name").value.trim(), country_code: $("walkup-country").value};
    if ($("walkup-email").value.trim()) body.email = $("walkup-email").value.trim();
    $("walkup-submit").disabled = true;
    let resp, data = {};
    try {
      resp = await fetch("/api/events/" + root.dataset.eventId + "/enrol", {method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}, body: JSON.stringify(body)});
      try { data = await resp.json(); } catch (e) { data = {error: resp.statusText}; }
    } catch (e) {
      data = {error: "no connection to the server: nothing was enrolled"};
    } finally {
      $("walkup-submit").disabled = false;
    }
    const slip = $("walkup-slip");
    if (!resp || !resp.ok) {
      $("walkup-message").textContent = data.error || ("HTTP " + (resp ? resp.status : "?"));
      if (slip) slip.hidden = true;
      return;
    }
    const name = data.racer.username;
    $("walkup-message").textContent = data.already_enrolled ? name + " was enrolled already"
      : (data.created ? name + " created and enrolled" : name + " (existing racer) enrolled");
    $("walkup-form").reset();
    if (slip) {
      slip.action = root.dataset.slipUrl.replace("/0/", "/" + data.racer.id + "/");
      slip.hidden = false;
    }
    document.dispatchEvent(new CustomEvent("drem:racer-enrolled", {detail: data}));
  });
})();
