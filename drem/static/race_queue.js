// The race queue panel of the timekeeper console (timekeeper/_queue_panel.html): the
// track's queue live over the /queue namespace (staff room), call next / check in / skip /
// remove / add, and the next racer preselected in the console's race set-up form (its
// #tk-racer, #tk-model and #tk-car selects, filled by timekeeper.js).
(function () {
  "use strict";
  const panel = document.getElementById("rq-panel");
  if (!panel) return;
  const trackId = Number(panel.dataset.trackId);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const STATE_LABEL = { waiting: "waiting", checked_in: "checked in", called: "called", racing: "racing",
                        skipped: "skipped (no-show)" };
  let queue = null, racers = [];
  let manualFor = null;    // the operator chose another racer while this entry was next
  let reloadedFor = null;  // the queue version for which the console's racer list was reloaded

  async function api(method, path, body) {
    let resp;
    try {
      resp = await fetch(path, { method: method, headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
                                 body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) { $("rq-message").textContent = "not sent: no connection to the server"; return null; }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    if (!resp.ok) { $("rq-message").textContent = data.error || ("HTTP " + resp.status); return null; }
    $("rq-message").textContent = "";
    return data;
  }

  function fmtWait(ms) { return ms < 60000 ? "now" : "~" + Math.round(ms / 60000) + " min"; }

  // the entry the set-up form should show: the first called racer, else the first checked in
  function nextEntry() {
    if (!queue) return null;
    const byId = new Map(queue.entries.map((e) => [e.id, e]));
    const next = queue.next.map((id) => byId.get(id)).filter(Boolean);
    return next.find((e) => e.state === "called") || next[0] || null;
  }

  function apply(q) {
    if (!q || q.track_id !== trackId) return;
    if (queue && q.version < queue.version) return;  // an older message than the one shown
    queue = q;
    render();
    preselect();
  }

  function button(label, cls, onClick) {
    const b = document.createElement("button"); b.textContent = label; b.className = cls; b.type = "button";
    b.addEventListener("click", onClick); return b;
  }

  function render() {
    $("rq-count").textContent = String(queue.entries.length);
    $("rq-skip-back").value = queue.skip_back;
    const next = nextEntry();
    $("rq-next").textContent = next ? next.racer.username + (next.model ? " · " + next.model.filename : "") +
      " (" + STATE_LABEL[next.state] + ")" : "nobody checked in";
    $("rq-next").dataset.entryId = next ? next.id : "";
    const body = $("rq-table").querySelector("tbody");
    body.replaceChildren(...queue.entries.map((e) => {
      const tr = document.createElement("tr"); tr.dataset.entryId = e.id; tr.dataset.state = e.state;
      if (next && e.id === next.id) tr.className = "rq-is-next";
      [e.place, e.racer.username, STATE_LABEL[e.state] || e.state, e.model ? e.model.filename : "–",
       e.state === "racing" ? "on track" : fmtWait(e.wait_ms)].forEach((v) => {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      const td = document.createElement("td"); td.className = "rq-buttons";
      if (e.state === "waiting" || e.state === "skipped") td.append(button("Check in", "secondary", () => checkIn(e)));
      if (e.state === "called" || e.state === "checked_in") td.append(button("Skip (no-show)", "secondary", () => act(e, "skip")));
      if (e.state !== "racing") td.append(button("Remove", "danger", () => remove(e)));
      tr.appendChild(td);
      return tr;
    }));
  }

  // The console's racer list (timekeeper.js) was read when the page loaded or the last race
  // ended: a racer enrolled since then, or a model uploaded since then, is not in it yet.
  // Reload it (once per queue version); its rebuild calls preselect() again.
  function reloadRacers() {
    if (reloadedFor === queue.version || !window.dremTk) return;
    reloadedFor = queue.version;
    window.dremTk.loadRacers();
  }

  // Put the next racer, their model and the suggested car into the set-up form, once per
  // entry (and again when timekeeper.js rebuilds the racer list), unless the operator
  // picked someone else meanwhile.
  function preselect() {
    const e = nextEntry();
    const setup = $("tk-setup"), racerSel = $("tk-racer");
    if (!e || !setup || setup.hidden || !racerSel || manualFor === e.id) return;
    if (![...racerSel.options].some((o) => o.value === String(e.racer.id))) { reloadRacers(); return; }
    if (racerSel.value !== String(e.racer.id)) {
      racerSel.value = String(e.racer.id);
      racerSel.dispatchEvent(new Event("change"));  // timekeeper.js fills that racer's models
    }
    const modelSel = $("tk-model"), carSel = $("tk-car");
    const model = e.model ? String(e.model.id) : "";
    if (modelSel && [...modelSel.options].some((o) => o.value === model)) modelSel.value = model;
    else if (modelSel) reloadRacers();
    if (carSel && e.car_id && [...carSel.options].some((o) => o.value === String(e.car_id))) carSel.value = String(e.car_id);
    panel.dataset.preselected = String(e.id);
  }

  const racerSel = $("tk-racer");
  if (racerSel) {
    new MutationObserver(() => preselect()).observe(racerSel, { childList: true });
    racerSel.addEventListener("change", (ev) => {
      const e = nextEntry();
      if (ev.isTrusted && e) manualFor = racerSel.value === String(e.racer.id) ? null : e.id;
    });
  }

  async function act(e, name) {
    const data = await api("POST", "/api/queue/entries/" + e.id + "/" + name, {});
    if (data) apply(data.queue);
  }
  async function remove(e) {
    if (!confirm("Take " + e.racer.username + " out of the queue?")) return;
    const data = await api("DELETE", "/api/queue/entries/" + e.id);
    if (data) apply(data.queue);
  }
  async function checkIn(e) {
    const r = racers.find((x) => x.user_id === e.racer.id);
    const model = e.model ? e.model.id : (r && r.models.length ? r.models[0].id : null);
    const data = await api("POST", "/api/queue/entries/" + e.id + "/check-in", model ? { model_id: model } : {});
    if (data) apply(data.queue);
  }
  $("rq-call-next").addEventListener("click", async () => {
    manualFor = null;
    const data = await api("POST", "/api/tracks/" + trackId + "/queue/call-next", {});
    if (data) apply(data.queue);
  });
  $("rq-add").addEventListener("click", async () => {
    const id = Number($("rq-add-racer").value);
    if (!id) return;
    const data = await api("POST", "/api/tracks/" + trackId + "/queue", { racer_id: id });
    if (data) apply(data.queue);
  });
  $("rq-skip-back").addEventListener("change", async (ev) => {
    const data = await api("PUT", "/api/tracks/" + trackId + "/queue/settings", { skip_back: Number(ev.target.value) });
    if (data) apply(data.queue);
  });

  // "Add racer" lists the racers of timekeeper.js's list (GET /api/tracks/<id>/racers),
  // rebuilt with it; opening the list reads it again, so a racer enrolled at the desk
  // after this page loaded is there.
  function fillAddList(list) {
    racers = list;
    const sel = $("rq-add-racer"), keep = sel.value;
    sel.replaceChildren(...racers.map((r) => {
      const o = document.createElement("option"); o.value = r.user_id;
      o.textContent = r.username + " (" + r.runs_done + "/" + (r.max_runs == null ? "∞" : r.max_runs) + " runs)";
      o.disabled = r.max_runs != null && r.runs_done >= r.max_runs;
      return o;
    }));
    if (keep && racers.some((r) => String(r.user_id) === keep)) sel.value = keep;
  }
  document.addEventListener("tk:racers", (ev) => fillAddList(ev.detail));
  $("rq-add-racer").addEventListener("focus", () => { if (window.dremTk) window.dremTk.loadRacers(); });
  if (window.dremTk) window.dremTk.loadRacers();  // also while a race runs (timekeeper.js waits for its end)
  // A walk-up racer enrolled on this page (walkup.js) is picked by timekeeper.js: that is
  // the operator's choice, which a later queue update must not undo.
  document.addEventListener("drem:racer-enrolled", (ev) => {
    const e = nextEntry();
    if (e && e.racer.id !== ev.detail.racer.id) manualFor = e.id;
  });

  const socket = io("/queue", { transports: ["websocket", "polling"] });
  socket.on("connect", () => {
    socket.emit("watch_console", { track_id: trackId }, (answer) => {
      if (answer && answer.ok) { queue = null; apply(answer.queue); }  // (re)connected: the whole queue
    });
  });
  socket.on("queue_update", apply);
  // the set-up form shows again after a race: put the next racer in
  new MutationObserver(() => preselect()).observe($("tk-setup"), { attributes: true, attributeFilter: ["hidden"] });
})();
