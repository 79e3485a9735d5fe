// Timekeeper console, review step: when the race has ended (time up, lap target or X) the
// operator checks the laps before Submit. Every edit is saved at once through the review
// API (audited on the server) and comes back as the race state; Enter (outside a text
// field) or the Submit button keeps the race. Enter inside a field saves that field.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const tk = window.dremTk;
  let race = null;

  function reviewing() { return !!(race && race.live && race.status === "ended"); }
  function secs(ms) { return ms ? String(ms / 1000) : ""; }
  function toMs(text) { const n = Number(String(text).trim() || "0"); return Number.isFinite(n) && n >= 0 ? Math.round(n * 1000) : NaN; }
  function base() { return "/api/races/" + race.race_id; }
  async function send(method, path, body) { const s = await tk.api(method, path, body); if (s) tk.apply(s); return s; }

  // A field keeps what the operator is typing: a pushed state never overwrites the focused
  // one, nor one typed in and not saved yet (a lap penalty waiting for its reason).
  function setValue(input, value) {
    if (document.activeElement !== input && !input.dataset.unsaved) input.value = value;
  }
  function setChecked(input, value) { if (document.activeElement !== input) input.checked = value; }
  function saved(...inputs) { inputs.forEach((el) => { delete el.dataset.unsaved; }); }
  $("tk-review").addEventListener("input", (ev) => { ev.target.dataset.unsaved = "1"; });

  function lapRow(lap) {
    const tr = document.createElement("tr");
    tr.dataset.lapId = lap.id;
    tr.innerHTML = '<td class="tk-rv-no"></td><td class="tk-rv-time"></td>' +
      '<td><input type="checkbox" class="tk-rv-valid"></td>' +
      '<td><input type="number" min="0" step="1" class="tk-rv-resets"></td>' +
      '<td><input type="number" min="0" step="0.001" class="tk-rv-penalty"></td>' +
      '<td><input class="tk-rv-reason tk-reason" maxlength="200" placeholder="e.g. cone"></td>';
    const lapNo = () => Number(tr.dataset.lapNumber);
    tr.querySelector(".tk-rv-valid").addEventListener("change", (ev) =>
      send("PATCH", base() + "/review/laps/" + lapNo(), {invalidated: !ev.target.checked}));
    tr.querySelector(".tk-rv-resets").addEventListener("change", async (ev) => {
      if (await send("PATCH", base() + "/review/laps/" + lapNo(), {resets: Number(ev.target.value)})) saved(ev.target);
    });
    const savePenalty = async () => {
      const penalty = tr.querySelector(".tk-rv-penalty"), why = tr.querySelector(".tk-rv-reason");
      const ms = toMs(penalty.value), reason = why.value.trim();
      if (Number.isNaN(ms)) { tk.say("a penalty is a number of seconds"); return; }
      if (ms && !reason) { tk.say("give lap " + lapNo() + "'s penalty a reason"); return; }
      if (await send("PATCH", base() + "/review/laps/" + lapNo(), {penalty_ms: ms, penalty_reason: reason})) {
        saved(penalty, why);
      }
    };
    tr.querySelector(".tk-rv-penalty").addEventListener("change", savePenalty);
    tr.querySelector(".tk-rv-reason").addEventListener("change", savePenalty);
    return tr;
  }

  function render() {
    const box = $("tk-review");
    box.hidden = !reviewing();
    if (box.hidden) { box.querySelectorAll("[data-unsaved]").forEach((el) => saved(el)); return; }
    const body = $("tk-review-laps").querySelector("tbody");
    const rows = new Map([...body.children].map((tr) => [tr.dataset.lapId, tr]));
    const keep = new Set();
    race.laps.forEach((lap) => {
      const key = String(lap.id);
      keep.add(key);
      const tr = rows.get(key) || lapRow(lap);
      tr.dataset.lapNumber = lap.lap_number;
      tr.className = lap.valid ? "" : "invalid";
      tr.querySelector(".tk-rv-no").textContent = lap.lap_number + (lap.dnf ? " DNF" : "");
      tr.querySelector(".tk-rv-time").textContent = tk.fmtMs(lap.time_ms);
      const valid = tr.querySelector(".tk-rv-valid");
      setChecked(valid, !lap.invalidated && !lap.dnf);
      valid.setAttribute("aria-label", "lap " + lap.lap_number + " counts");
      setValue(tr.querySelector(".tk-rv-resets"), lap.resets);
      tr.querySelector(".tk-rv-resets").setAttribute("aria-label", "resets of lap " + lap.lap_number);
      setValue(tr.querySelector(".tk-rv-penalty"), secs(lap.penalty_ms));
      tr.querySelector(".tk-rv-penalty").setAttribute("aria-label", "penalty of lap " + lap.lap_number + " in seconds");
      setValue(tr.querySelector(".tk-rv-reason"), lap.penalty_reason || "");
      tr.querySelector(".tk-rv-reason").setAttribute("aria-label", "reason for lap " + lap.lap_number + "'s penalty");
      body.appendChild(tr);  // appended in lap order (moves an existing row)
    });
    rows.forEach((tr, key) => { if (!keep.has(key)) tr.remove(); });
    setValue($("tk-race-penalty"), secs(race.penalty_ms));
    setValue($("tk-race-penalty-reason"), race.penalty_reason || "");
    setChecked($("tk-dq"), race.disqualified);
    setValue($("tk-dq-reason"), race.disqualified_reason || "");
    $("tk-missed-at").max = race.laps.length + 1;
    box.querySelectorAll("input, button").forEach((el) => { el.disabled = !tk.canControl(); });
    race.laps.forEach((lap) => {  // a DNF lap never counts: its tick stays off
      if (lap.dnf) body.querySelector('tr[data-lap-id="' + lap.id + '"] .tk-rv-valid').disabled = true;
    });
  }

  $("tk-missed-add").addEventListener("click", async () => {
    const time = $("tk-missed-time").value.trim();
    if (!time) { tk.say("type the missed lap's time (ms or m:ss.mmm)"); return; }
    const body = {time: time, source_id: "missed-" + tk.uid()};
    if ($("tk-missed-at").value) body.lap_number = Number($("tk-missed-at").value);
    if (await send("POST", base() + "/review/laps", body)) { $("tk-missed-time").value = ""; $("tk-missed-at").value = ""; }
  });
  $("tk-race-penalty-save").addEventListener("click", async () => {
    const ms = toMs($("tk-race-penalty").value);
    if (Number.isNaN(ms)) { tk.say("a penalty is a number of seconds"); return; }
    if (await send("PUT", base() + "/penalty", {penalty_ms: ms, penalty_reason: $("tk-race-penalty-reason").value.trim()})) {
      saved($("tk-race-penalty"), $("tk-race-penalty-reason"));
    }
  });
  $("tk-dq-save").addEventListener("click", async () => {
    if (await send("PUT", base() + "/disqualification", {disqualified: $("tk-dq").checked,
                                                         reason: $("tk-dq-reason").value.trim()})) saved($("tk-dq-reason"));
  });
  const submit = () => { if (reviewing() && tk.canControl()) send("POST", base() + "/submit", {}); };
  $("tk-review-submit").addEventListener("click", submit);

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || ev.repeat || !reviewing()) return;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName)) {
      if (ev.target.closest("#tk-review")) { ev.preventDefault(); ev.target.blur(); }  // saves the field (change)
      return;
    }
    ev.preventDefault();  // never also "press" a focused button
    submit();
  });
  document.addEventListener("tk:state", (ev) => { race = ev.detail; render(); });
})();
