/* Shared by the big-screen leaderboard and the stream overlay: the live connection to the
   /leaderboard Socket.IO namespace, the state (full on (re)connect, then small changes),
   time formatting and the texts of the page's languages. Times are integer milliseconds. */
(function () {
  "use strict";

  /* Texts of every language, from drem/leaderboard/translations/<lang>.json, put in the
     page by the server as <script id="drem-texts" type="application/json">. */
  const TEXT = JSON.parse((document.getElementById("drem-texts") || { textContent: "{}" }).textContent);
  if (!TEXT.en) TEXT.en = {};
  let decimal = ".";

  /* the language of the numbers (decimal separator) and dates */
  function setLang(lang) { decimal = ((TEXT[lang] || TEXT.en)._decimal) || "."; }

  function t(lang, key, vars) {
    let s = (TEXT[lang] || TEXT.en)[key] || TEXT.en[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.replace("{" + k + "}", vars[k]);
    return s;
  }

  function translate(root, lang) {
    setLang(lang);
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(lang, el.dataset.i18n); });
    document.documentElement.lang = lang;
  }

  /* 83456 -> "1:23.456"; 9123 -> "9.123"; null -> "–" */
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    ms = Math.round(ms);
    const neg = ms < 0; if (neg) ms = -ms;
    const min = Math.floor(ms / 60000), rest = ms % 60000;
    const sec = Math.floor(rest / 1000), milli = String(rest % 1000).padStart(3, "0");
    return (neg ? "-" : "") + (min ? min + ":" + String(sec).padStart(2, "0") : String(sec)) + decimal + milli;
  }

  function fmtGap(ms) { return ms === null || ms === undefined ? "" : ms === 0 ? "" : "+" + fmtMs(ms); }

  /* 123456 -> "2:03" (a race clock, tenths below one minute) */
  function fmtClock(ms) {
    ms = Math.max(0, ms);
    const min = Math.floor(ms / 60000), sec = Math.floor((ms % 60000) / 1000);
    if (min) return min + ":" + String(sec).padStart(2, "0");
    return sec + decimal + Math.floor((ms % 1000) / 100);
  }

  function flag(cc) {
    if (!cc || !/^[A-Za-z]{2}$/.test(cc)) return null;
    const img = document.createElement("img");
    img.className = "flag"; img.alt = cc.toUpperCase(); img.width = 32; img.height = 24;
    img.src = "/vendor/flags/" + cc.toLowerCase() + ".svg";
    return img;
  }

  function valueLabel(method) {
    return method === "best_average" ? "best_average" : method === "total_time" ? "total_time" : "best_lap";
  }

  /* Gaps are recomputed here from the ranking values (updates carry only changed entries). */
  function recomputeGaps(entries) {
    const lead = entries.length ? entries[0].ranking_value_ms : null;
    entries.forEach((e, i) => {
      const v = e.ranking_value_ms, ahead = i ? entries[i - 1].ranking_value_ms : null;
      e.gap_to_leader_ms = v === null || lead === null ? null : v - lead;
      e.gap_to_ahead_ms = v === null || ahead === null ? null : v - ahead;
    });
  }

  /* A race clock interpolated locally while the race runs (no clock skew: received time). */
  function raceClock(r) {
    const dt = r.status === "running" ? performance.now() - r._received : 0;
    const elapsed = (r.elapsed_ms || 0) + dt;
    return { elapsed: elapsed, left: Math.max(0, (r.time_limit_ms || 0) - elapsed),
             currentLap: (r.current_lap_ms || 0) + dt };
  }

  class LiveBoard {
    /* handlers: {full(state), update(msg), race(), status(text key)} */
    constructor(eventId, track, handlers) {
      this.eventId = Number(eventId); this.track = String(track); this.h = handlers;
      this.state = null; this.entries = []; this.races = {};
    }

    connect() {
      /* websocket only: several server processes need no sticky sessions */
      const s = this.socket = io("/leaderboard", { transports: ["websocket"], reconnectionDelayMax: 4000 });
      s.on("connect", () => this.join());
      s.on("disconnect", () => this.h.status && this.h.status("offline"));
      s.on("connect_error", () => this.h.status && this.h.status("offline"));
      s.on("lb_full", (st) => this.setFull(st));
      s.on("lb_update", (m) => this.update(m));
      s.on("race_state", (r) => this.raceState(r));
    }

    setTrack(track) { this.track = String(track); this.state = null; this.races = {}; this.join(); }

    join() {
      this.socket.emit("join", { event_id: this.eventId, track: this.track }, (st) => {
        if (st && !st.error) this.setFull(st);
      });
    }

    mine(track) { return String(track) === this.track; }

    setFull(st) {
      if (!this.mine(st.track)) return;
      this.state = st;
      this.entries = st.entries.slice();
      recomputeGaps(this.entries);
      const now = performance.now();
      this.races = {};
      for (const k of Object.keys(st.races || {})) { st.races[k]._received = now; this.races[k] = st.races[k]; }
      this.h.status && this.h.status("live");
      this.h.full(st);
      this.h.race && this.h.race();
    }

    update(m) {
      if (!this.state || !this.mine(m.track)) return;
      if (m.to > this.state.version) {                    // else: already in our state (versions are integers)
        if (m.from !== this.state.version) { this.join(); return; }  // missed something: full state
        const byId = new Map(this.entries.map((e) => [e.racer_id, e]));
        for (const e of m.entries) byId.set(e.racer_id, e);
        this.entries = Array.from(byId.values()).filter((e) => e.rank <= m.count).sort((a, b) => a.rank - b.rank);
        recomputeGaps(this.entries);
        this.state.version = m.to;
        this.h.update(m);
      }
      if (m.race) this.raceState(m.race);                 // a lap: the live race after it
    }

    raceState(r) {
      if (this.track !== "combined" && String(r.track_id) !== this.track) return;
      r._received = performance.now();
      this.races[String(r.track_id)] = r;
      this.h.race && this.h.race();
    }

    /* the live races to show (running or paused first), newest state per track */
    liveRaces() {
      return Object.values(this.races).filter((r) => r.status === "running" || r.status === "paused");
    }
  }

  /* a date in the language's way (Intl), e.g. 2026-11-22 -> "22.11.2026" in German */
  function fmtDate(iso, lang) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
  }

  window.DremBoard = { TEXT, t, translate, setLang, fmtDate, fmtMs, fmtGap, fmtClock, flag, valueLabel, recomputeGaps,
                       raceClock, LiveBoard };
})();
