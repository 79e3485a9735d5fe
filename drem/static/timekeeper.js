// Timekeeper console: the server holds the race; this page shows it and sends actions.
// The clock is interpolated locally from the last state (elapsed_ms at server_time).
(function () {
  "use strict";
  const root = document.getElementById("tk");
  const trackId = Number(root.dataset.trackId);
  const userId = Number(root.dataset.userId);
  const isAdmin = root.dataset.isAdmin === "1";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  // A state was made about half a round trip before it arrived, so the local clock starts
  // that much further on (the clocks of the two devices are never compared). HTTP answers
  // carry their own estimate; pushed states use the socket's, measured by the watch ack.
  let state = null, receivedAt = 0, racers = [], socketLatency = 0;
  function halfTrip(startedAt) { return Math.min(1000, Math.max(0, (performance.now() - startedAt) / 2)); }

  function fmt(ms) {
    if (ms == null) return "–";
    ms = Math.max(0, Math.round(ms));
    const m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000), t = Math.floor((ms % 1000) / 100);
    return (m ? m + ":" + String(s).padStart(2, "0") : s) + "." + t;
  }
  function fmtMs(ms) { return ms == null ? "–" : (ms / 1000).toFixed(3); }
  function uid() { return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, ""); }

  async function api(method, path, body) {
    let resp;
    const startedAt = performance.now();
    try {
      resp = await fetch(path, {method: method, headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      // No answer at all (server down, network gone): say so instead of failing silently.
      // Nothing is resent later: a lap's time is taken when the server gets the press.
      $("tk-message").textContent = "not sent: no connection to the server (the race goes on on the server)";
      return null;
    }
    const latency = halfTrip(startedAt);
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {error: resp.statusText}; }
    if (data && typeof data === "object") Object.defineProperty(data, "latencyMs", {value: latency});
    if (!resp.ok) { $("tk-message").textContent = data.error || ("HTTP " + resp.status); return null; }
    $("tk-message").textContent = "";
    return data;
  }

  function canControl() { return state && (state.operator_id === userId || isAdmin); }

  // The other console scripts (timekeeper-cars.js, timekeeper-review.js) follow the state
  // through this event and act through window.dremTk.
  function announce() { document.dispatchEvent(new CustomEvent("tk:state", {detail: state})); }

  function render() {
    const live = state && state.live;
    $("tk-setup").hidden = !!live;
    $("tk-race").hidden = !live;
    if (!live) { loadRacers(); announce(); return; }
    $("tk-racer-name").textContent = state.racer.username + (state.raced_by_proxy ? " (proxy)" : "");
    $("tk-status").textContent = state.status + (state.time_up && state.status === "running" ? " · time up, last lap" : "");
    $("tk-readonly").hidden = canControl();
    $("tk-takeover").hidden = canControl();
    $("tk-operator").textContent = state.operator || "";
    $("tk-resets").textContent = state.current_resets;
    $("tk-best").textContent = fmtMs(state.best_lap_ms);
    document.querySelectorAll(".tk-buttons button").forEach((b) => { b.disabled = !canControl(); });
    const body = $("tk-laps").querySelector("tbody");
    body.innerHTML = "";
    state.laps.slice().reverse().forEach((lap) => {
      const tr = document.createElement("tr");
      const valid = lap.valid;  // the server's rule (drem.events.models.lap_is_valid)
      if (!valid) tr.className = "invalid";
      [lap.lap_number, fmtMs(lap.time_ms), lap.resets, lap.source, valid ? "yes" : (lap.dnf ? "DNF" : "no")].forEach((v) => {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    tick();
    announce();
  }

  function tick() {
    if (!state) return;
    const extra = state.status === "running" ? performance.now() - receivedAt : 0;
    $("tk-time-left").textContent = fmt(Math.max(0, state.time_left_ms - extra));
    $("tk-current").textContent = fmt(state.current_lap_ms + extra);
  }
  setInterval(tick, 100);

  // True when state ``a`` is older than ``b`` (same race): an answer that arrived late.
  function older(a, b) {
    if (!a || !b || a.race_id !== b.race_id) return false;
    if (a.version !== b.version) return a.version < b.version;
    return a.server_time < b.server_time;
  }

  function apply(s) {
    if (s && s.track_id !== trackId) return;
    if (older(s, state)) return;
    state = s; receivedAt = performance.now() - (s && s.latencyMs != null ? s.latencyMs : socketLatency); render();
  }

  async function loadRacers() {
    const data = await api("GET", "/api/tracks/" + trackId + "/racers");
    if (!data) return;
    racers = data.racers;
    const sel = $("tk-racer"), keep = sel.value;
    sel.innerHTML = "";
    racers.forEach((r) => {
      const o = document.createElement("option");
      o.value = r.user_id;
      o.textContent = r.username + " (" + r.runs_done + "/" + (r.max_runs == null ? "∞" : r.max_runs) + " runs)";
      if (r.max_runs != null && r.runs_done >= r.max_runs) o.disabled = true;
      sel.appendChild(o);
    });
    if (keep) sel.value = keep;
    fillModels();
    // race_queue.js keeps its "Add to queue" list and its preselection in step with this one
    document.dispatchEvent(new CustomEvent("tk:racers", {detail: racers}));
  }
  function fillModels() {
    const r = racers.find((x) => String(x.user_id) === $("tk-racer").value);
    const sel = $("tk-model");
    sel.innerHTML = '<option value="">no model</option>';
    (r ? r.models : []).forEach((m) => { const o = document.createElement("option"); o.value = m.id; o.textContent = m.filename; sel.appendChild(o); });
    if (r && r.models.length) sel.value = r.models[0].id;
  }
  $("tk-racer").addEventListener("change", fillModels);
  // A racer enrolled from this page (walk-up form, walkup.js): reload the list and pick them.
  document.addEventListener("drem:racer-enrolled", async (ev) => {
    await loadRacers(); $("tk-racer").value = String(ev.detail.racer.id); fillModels();
  });
  $("tk-setup-btn").addEventListener("click", async () => {
    const body = {track_id: trackId, racer_id: Number($("tk-racer").value), raced_by_proxy: $("tk-proxy").checked};
    if ($("tk-car").value) body.car_id = Number($("tk-car").value);
    if ($("tk-model").value) body.model_id = Number($("tk-model").value);
    const s = await api("POST", "/api/races", body);
    if (s) apply(s);
  });
  $("tk-takeover").addEventListener("click", async () => { const s = await api("POST", "/api/races/" + state.race_id + "/take-over", {}); if (s) apply(s); });

  async function act(name) {
    if (!state || !canControl()) return;
    const base = "/api/races/" + state.race_id;
    let s = null;
    if (name === "lap") { const r = await api("POST", base + "/laps", {source_id: uid()}); if (r) return; }
    else if (name === "reset+") s = await api("POST", base + "/resets", {delta: 1});
    else if (name === "reset-") s = await api("POST", base + "/resets", {delta: -1});
    else if (name === "dnf") s = await api("POST", base + "/dnf", {source_id: uid()});
    else if (name === "pause") s = await api("POST", base + (state.status === "paused" ? "/resume" : "/pause"), {});
    else if (name === "start") s = await api("POST", base + "/start", {override: $("tk-override").checked,
      override_reason: $("tk-override-reason").value});
    else if (name === "discard") { if (!confirm("Discard this race? Its laps will not count.")) return; s = await api("POST", base + "/discard", {}); }
    else s = await api("POST", base + "/" + name, {});
    if (s) apply(s);
  }
  document.querySelectorAll(".tk-buttons button").forEach((b) => b.addEventListener("click", () => act(b.dataset.act)));
  const keys = {" ": "lap", "s": "start", "p": "pause", "r": "reset+", "e": "reset-", "d": "dnf", "u": "undo", "x": "end", "Delete": "discard"};
  // Enter submits only in the review step of an ended race (timekeeper-review.js).
  document.addEventListener("keydown", (ev) => {
    // Enter on a focused race button would press it again (a pause toggled back): Enter is
    // no race key, so it does nothing there.
    if (ev.key === "Enter" && ev.target.closest && ev.target.closest(".tk-buttons")) { ev.preventDefault(); return; }
    if (["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName) || ev.repeat) return;
    const name = keys[ev.key] || keys[ev.key.toLowerCase()];
    if (name && state && !$("tk-race").hidden) { ev.preventDefault(); act(name); }
  });

  // Lap timers of this track: "timer connected" / "timer offline", live; a flash per crossing.
  const timers = new Map();
  function timerOnline(t) {
    return t.online && !t.revoked && t.last_seen_at && (Date.now() - Date.parse(t.last_seen_at)) / 1000 <= t.offline_after_s;
  }
  function renderTimers() {
    const el = $("tk-timer"), live = [...timers.values()].filter((t) => !t.revoked);
    if (!live.length) { el.textContent = "no lap timer"; el.dataset.state = "none"; el.className = "badge"; return; }
    const up = live.filter(timerOnline);
    el.dataset.state = up.length ? "online" : "offline";
    el.className = "badge " + (up.length ? "ok" : "warn");
    el.textContent = up.length ? "timer connected" + (live.length > 1 ? " (" + up.length + "/" + live.length + ")" : "")
                               : "timer offline";
  }
  setInterval(renderTimers, 1000);
  function flashCrossing(c) {
    const el = $("tk-timer");
    if (el.animate) el.animate([{background: "#f5c400", color: "#000"}, {}], {duration: 700});
    el.dataset.crossings = String(Number(el.dataset.crossings || 0) + 1);
    $("tk-timer-crossing").textContent = "crossing: " + (c.lap_number ? "lap " + c.lap_number : c.status) + (c.reason ? " (" + c.reason + ")" : "");
  }

  const socket = io("/timekeeper", {transports: ["websocket", "polling"]});
  socket.on("connect", () => {
    $("tk-connection").textContent = "live";
    timers.clear(); renderTimers();  // the watch below sends each timer of the track again
    const askedAt = performance.now();
    socket.emit("watch", {track_id: trackId}, (answer) => { socketLatency = halfTrip(askedAt); if (answer && answer.ok) apply(answer.race); });
  });
  socket.on("disconnect", () => { $("tk-connection").textContent = "reconnecting… (the race goes on on the server)"; });
  socket.on("race_state", apply);
  socket.on("timer_status", (t) => { if (t.track_id === trackId) { timers.set(t.id, t); renderTimers(); } });
  socket.on("timer_crossing", flashCrossing);

  window.dremTk = {api: api, apply: apply, act: act, uid: uid, fmtMs: fmtMs, canControl: canControl,
                   loadRacers: loadRacers,
                   state: () => state, say: (text) => { $("tk-message").textContent = text; }};
})();
