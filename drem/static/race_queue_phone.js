/* The racer's race-queue card on the event's landing page (/e/<id>): watches the queues of
   the event's tracks on the /queue Socket.IO namespace and, on every queue_update newer
   than the last one seen, fetches the card again (/e/<id>/queue/card) and swaps it in,
   keeping a model the racer picked but has not sent yet. Waiting times show the phone's
   local clock. */
(function () {
  "use strict";
  const card = () => document.getElementById("queue");
  if (!card()) return;
  const lang = card().dataset.lang || "en";
  const trackIds = JSON.parse(card().dataset.trackIds || "[]");
  const versions = JSON.parse(card().dataset.versions || "{}");  // track id -> highest queue version seen

  function localTimes(root) {
    root.querySelectorAll("time.queue-eta-time").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    });
  }

  let loading = null, again = false;
  async function reload() {
    if (loading) { again = true; return; }
    const el = card();
    const picked = {};
    el.querySelectorAll("select[name=model_id]").forEach((s) => { if (s.dataset.touched) picked[s.id] = s.value; });
    loading = fetch(el.dataset.cardUrl, { headers: { Accept: "text/html" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        if (!html) return;
        const box = document.createElement("div"); box.innerHTML = html;
        const fresh = box.querySelector("#queue"); if (!fresh) return;
        for (const [id, value] of Object.entries(picked)) {
          const s = fresh.querySelector("#" + CSS.escape(id));
          if (s && [...s.options].some((o) => o.value === value)) { s.value = value; s.dataset.touched = "1"; }
        }
        localTimes(fresh);
        for (const [k, v] of Object.entries(JSON.parse(fresh.dataset.versions || "{}"))) versions[k] = Math.max(versions[k] || 0, v);
        card().replaceWith(fresh);
      })
      .catch(() => {})
      .finally(() => { loading = null; if (again) { again = false; reload(); } });
  }

  document.addEventListener("change", (ev) => {
    if (ev.target.matches && ev.target.matches("#queue select[name=model_id]")) ev.target.dataset.touched = "1";
  });

  function newer(q) {
    const key = String(q.track_id);
    if (versions[key] !== undefined && q.version <= versions[key]) return false;
    versions[key] = q.version;
    return true;
  }

  localTimes(card());
  const socket = io("/queue", { transports: ["websocket", "polling"] });
  socket.on("connect", () => {
    socket.emit("watch", { track_ids: trackIds }, (answer) => {
      if (!answer || !answer.ok) return;
      let changed = false;
      for (const q of Object.values(answer.queues)) changed = newer(q) || changed;
      if (changed) reload();  // changed since the card was rendered
    });
  });
  socket.on("queue_update", (q) => { if (newer(q)) reload(); });
})();
