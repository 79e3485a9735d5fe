/* "Next up" on the big-screen leaderboard and the stream overlay: the next racers of the
   track's race queue (called first, then checked in; NEXT_UP_COUNT of them per track), live
   over the public /queue Socket.IO namespace. The block is the element with
   data-next-up (its data-track-ids: the tracks shown; a combined board shows each track's,
   labelled). Messages older than the version held are dropped. Needs leaderboard-core.js. */
(function () {
  "use strict";
  const B = window.DremBoard;
  const box = document.querySelector("[data-next-up]");
  if (!box || !window.io) return;
  const list = box.querySelector("ol");
  const count = Number(box.dataset.count || 3);
  const names = JSON.parse(box.dataset.trackNames || "{}");
  let trackIds = JSON.parse(box.dataset.trackIds || "[]");
  let queues = {};  // track id -> public queue state (drem.race_queue.state.queue_state)

  function lang() { return document.documentElement.lang || "en"; }

  function render() {
    const items = [];
    for (const id of trackIds) {
      const q = queues[String(id)]; if (!q) continue;
      const byId = new Map(q.entries.map((e) => [e.id, e]));
      q.next.slice(0, count).map((eid) => byId.get(eid)).filter(Boolean).forEach((e) => {
        const li = document.createElement("li"); li.dataset.entryId = e.id; li.dataset.state = e.state;
        if (trackIds.length > 1) { const t = document.createElement("span"); t.className = "nu-track"; t.textContent = names[String(id)] || ""; li.appendChild(t); }
        const f = B.flag(e.racer.country_code); if (f) li.appendChild(f);
        const n = document.createElement("span"); n.className = "name"; n.textContent = e.racer.username; li.appendChild(n);
        if (e.state === "called") { const c = document.createElement("span"); c.className = "nu-called"; c.textContent = B.t(lang(), "queue_called_short"); li.appendChild(c); }
        items.push(li);
      });
    }
    list.replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  function take(q) {
    const key = String(q.track_id);
    if (!trackIds.map(String).includes(key)) return;
    const held = queues[key];
    if (held && q.version < held.version) return;  // stale: a newer state is shown already
    queues[key] = q;
    render();
  }

  const socket = io("/queue", { transports: ["websocket"], reconnectionDelayMax: 4000 });
  function watch() {
    socket.emit("watch", { track_ids: trackIds }, (answer) => {
      if (!answer || !answer.ok) return;
      queues = {};
      Object.values(answer.queues).forEach(take);
      render();
    });
  }
  socket.on("connect", watch);
  socket.on("queue_update", take);

  /* the big screen's track switch */
  const sel = document.getElementById("sel-track");
  if (sel) sel.addEventListener("change", () => {
    trackIds = sel.value === "combined" ? Object.keys(names).map(Number) : [Number(sel.value)];
    watch();
  });
  window.dremNextUp = { get queues() { return queues; } };  // for tests and the curious
})();
