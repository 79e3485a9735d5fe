// Lap timers of one track: activation codes, the live list (online / last seen / last
// crossing / clock offset), revoke, the race-start option and the latest crossings.
(function () {
  "use strict";
  const root = document.getElementById("timers");
  const trackId = Number(root.dataset.trackId);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const timers = new Map();

  async function api(method, path, body) {
    let resp;
    try {
      resp = await fetch(path, {method: method, headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) { $("tm-message").textContent = "no connection to the server"; return null; }
    const data = await resp.json().catch(() => ({error: resp.statusText}));
    if (!resp.ok) { $("tm-message").textContent = data.error || ("HTTP " + resp.status); return null; }
    $("tm-message").textContent = "";
    return data;
  }
  function ago(iso) {
    if (!iso) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? s + " s ago" : Math.round(s / 60) + " min ago";
  }
  function online(t) {
    // the server's word at the last status, turned offline here once the heartbeats stop
    return t.online && !t.revoked && t.last_seen_at && (Date.now() - Date.parse(t.last_seen_at)) / 1000 <= t.offline_after_s;
  }
  function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }

  function render() {
    const body = $("tm-list").querySelector("tbody");
    body.innerHTML = "";
    if (!timers.size) { const tr = document.createElement("tr"); cell(tr, "No timer yet.", "muted").colSpan = 7; body.appendChild(tr); }
    [...timers.values()].sort((a, b) => a.id - b.id).forEach((t) => {
      const tr = document.createElement("tr");
      tr.dataset.timerId = t.id;
      cell(tr, t.name + (t.hostname ? " (" + t.hostname + ")" : ""));
      cell(tr, t.revoked ? "revoked" : (online(t) ? "online" : "offline"), "badge tm-state " + (t.revoked ? "" : online(t) ? "ok" : "warn"));
      cell(tr, ago(t.last_seen_at));
      cell(tr, ago(t.last_crossing_at));
      cell(tr, t.clock_offset_ms == null ? "–" : t.clock_offset_ms + " ms" + (t.round_trip_ms != null ? " (±" + Math.ceil(t.round_trip_ms / 2) + ")" : ""));
      cell(tr, (t.sensors || []).map((s) => "GPIO" + s.pin + (s.pull_up ? " pull-up" : " pull-down") + ", " + s.bounce_ms + " ms").join("; ") || "–");
      const td = cell(tr, "");
      if (!t.revoked) {
        const b = document.createElement("button"); b.className = "danger tm-revoke"; b.textContent = "Revoke";
        b.addEventListener("click", async () => {
          if (!confirm("Revoke " + t.name + "? It must be activated again to time laps.")) return;
          const r = await api("POST", "/api/timers/" + t.id + "/revoke", {});
          if (r) { timers.set(r.id, r); render(); }
        });
        td.appendChild(b);
      }
      body.appendChild(tr);
    });
  }

  async function loadCrossings() {
    const data = await api("GET", "/api/tracks/" + trackId + "/crossings?limit=20");
    if (!data) return;
    const body = $("tm-crossings").querySelector("tbody");
    body.innerHTML = "";
    data.crossings.slice().reverse().forEach((c) => {
      const tr = document.createElement("tr");
      [new Date(c.received_at).toLocaleTimeString(), c.timer, c.sensor, c.device_time_ms, c.status, c.reason, c.race_id || "–"].forEach((v) => cell(tr, v));
      body.appendChild(tr);
    });
  }

  async function load() {
    const data = await api("GET", "/api/tracks/" + trackId + "/timers");
    if (!data) return;
    timers.clear();
    data.timers.forEach((t) => timers.set(t.id, t));
    $("tm-first-starts").checked = data.timing.first_crossing_starts_race;
    render();
    loadCrossings();
  }

  $("tm-code-btn").addEventListener("click", async () => {
    const r = await api("POST", "/api/tracks/" + trackId + "/timer-codes", {name: $("tm-name").value});
    if (!r) return;
    $("tm-code-value").textContent = r.code;
    $("tm-code-expires").textContent = new Date(r.expires_at).toLocaleTimeString();
    $("tm-code").hidden = false;
  });
  $("tm-first-starts").addEventListener("change", async (ev) => {
    const r = await api("PUT", "/api/tracks/" + trackId + "/timing", {first_crossing_starts_race: ev.target.checked});
    if (r) ev.target.checked = r.first_crossing_starts_race;
  });

  const socket = io("/timekeeper", {transports: ["websocket", "polling"]});
  socket.on("connect", () => { socket.emit("watch", {track_id: trackId}); load(); });
  socket.on("timer_status", (t) => { if (t.track_id === trackId) { timers.set(t.id, t); render(); } });
  socket.on("timer_crossing", () => loadCrossings());
  setInterval(render, 2000);
})();
