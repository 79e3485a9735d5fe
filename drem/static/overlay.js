/* The stream overlay (/events/<id>/overlay) for OBS: a lower third while a race runs
   (racer, time left, current, last and best lap; purple = event best, green = personal
   best, the racer's position and gap to the leader), and the top N with the gap to the
   leader between races. */
(function () {
  "use strict";
  const B = window.DremBoard;
  const body = document.body;
  const cfg = { event: body.dataset.eventId, track: body.dataset.track, lang: body.dataset.lang,
                top: Number(body.dataset.top || 5) };
  const $ = (id) => document.getElementById(id);

  const board = new B.LiveBoard(cfg.event, cfg.track, {
    full: (st) => { $("ov-title").textContent = st.title; renderTop(); renderThird(); },
    update: () => { renderTop(); renderThird(); },
    race: () => renderThird(),
  });

  function current() {
    const live = board.liveRaces();
    return live.length ? live[live.length - 1] : null;
  }

  /* the fastest valid lap on this leaderboard (event best) and the racer's own best */
  function eventBest() {
    let best = null;
    for (const e of board.entries) {
      const b = e.summary.best_lap_ms;
      if (b !== null && (best === null || b < best)) best = b;
    }
    return best;
  }
  function personalBest(racerId) {
    const e = board.entries.find((x) => x.racer_id === racerId);
    return e ? e.summary.best_lap_ms : null;
  }
  function colour(el, ms, valid, racerId) {
    el.classList.remove("event-best", "personal-best", "invalid");
    if (ms === null || ms === undefined) return;
    if (!valid) { el.classList.add("invalid"); return; }
    const eb = eventBest(), pb = personalBest(racerId);
    if (eb !== null && ms <= eb) el.classList.add("event-best");
    else if (pb !== null && ms <= pb) el.classList.add("personal-best");
  }

  function renderTop() {
    const rows = board.entries.slice(0, cfg.top).map((e) => {
      const li = document.createElement("li"); li.dataset.racerId = e.racer_id;
      li.className = e.rank <= 3 && e.ranking_value_ms !== null ? "top" + e.rank : "";
      const rank = document.createElement("span"); rank.className = "rank"; rank.textContent = e.rank;
      const who = document.createElement("span"); who.className = "who";
      const f = B.flag(e.country); if (f) who.appendChild(f);
      const n = document.createElement("span"); n.className = "name"; n.textContent = e.username; who.appendChild(n);
      if (e.summary.raced_by_proxy) { const p = document.createElement("span"); p.className = "proxy"; p.textContent = "P"; who.appendChild(p); }
      const v = document.createElement("span"); v.className = "value"; v.textContent = B.fmtMs(e.ranking_value_ms);
      const g = document.createElement("span"); g.className = "gap"; g.textContent = B.fmtGap(e.gap_to_leader_ms);
      li.append(rank, who, v, g);
      return li;
    });
    $("ov-rows").replaceChildren(...rows);
  }

  function renderThird() {
    const r = current();
    $("ov-third").hidden = !r;
    $("ov-top").hidden = !!r || board.entries.length === 0;
    if (!r) return;
    const who = $("ov-racer"); who.replaceChildren();
    const f = B.flag(r.racer && r.racer.country_code); if (f) who.appendChild(f);
    const n = document.createElement("span"); n.className = "name"; n.textContent = r.racer ? r.racer.username : ""; who.appendChild(n);
    if (r.raced_by_proxy) { const p = document.createElement("span"); p.className = "proxy"; p.textContent = B.t(cfg.lang, "by_proxy"); who.appendChild(p); }
    const nLaps = r.lap_count || 0, last = r.last_lap;
    const lastEl = $("ov-last"), bestEl = $("ov-best");
    lastEl.textContent = last ? B.fmtMs(last.time_ms) : "–";
    colour(lastEl, last ? last.time_ms : null, !!(last && last.valid), r.racer && r.racer.id);
    bestEl.textContent = B.fmtMs(r.best_lap_ms);
    colour(bestEl, r.best_lap_ms, true, r.racer && r.racer.id);
    $("ov-laps").textContent = r.lap_target ? nLaps + "/" + r.lap_target : String(nLaps);
    /* the racer's current position and gap to the leader: the board's entries (ranking engine) */
    const e = board.entries.find((x) => r.racer && x.racer_id === r.racer.id);
    $("ov-pos").textContent = e && e.ranking_value_ms !== null ? String(e.rank) : "–";
    $("ov-gap").textContent = e && e.ranking_value_ms !== null ? (e.rank === 1 ? "–" : B.fmtGap(e.gap_to_leader_ms)) : "–";
    tick();
  }

  function tick() {
    const r = current(); if (!r) return;
    const c = B.raceClock(r);
    $("ov-left").textContent = B.fmtClock(c.left);
    $("ov-current").textContent = B.fmtMs(Math.floor(c.currentLap / 100) * 100).replace(/\d\d$/, "");
  }
  setInterval(tick, 100);

  B.translate(document, cfg.lang);
  board.connect();
  window.dremOverlay = board;
})();
