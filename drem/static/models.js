// Model pages: a confirmation before each delete form posts (its data-confirm text);
// the upload portal: the event to upload for, drag and drop, several files, a progress
// bar each, live scan status.
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (e) => { if (!confirm(form.dataset.confirm)) e.preventDefault(); });
  });
  if (!document.getElementById("dropzone")) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("upload-list");
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  // Latest pushed status per model id. A push can arrive before the upload's own answer
  // (a small file is scanned at once): the answer then shows it instead of "uploaded".
  const latest = {};

  function row(file) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress> <span class="state">uploading</span>';
    li.querySelector(".name").textContent = file.name;
    list.appendChild(li);
    return li;
  }

  function upload(file) {
    const li = row(file);
    const xhr = new XMLHttpRequest();
    let url = "/api/models?filename=" + encodeURIComponent(file.name);
    const event = document.getElementById("upload-event");
    if (event && event.value) url += "&event_id=" + encodeURIComponent(event.value);
    // Donkey models' own settings (categorical throttle range, crop), when the racer typed them
    for (const [id, name] of [["ds-range", "categorical_throttle_range"], ["ds-top", "crop_top"], ["ds-bottom", "crop_bottom"]]) {
      const el = document.getElementById(id);
      if (el && el.value.trim()) url += "&" + name + "=" + encodeURIComponent(el.value.trim());
    }
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) li.querySelector("progress").value = 100 * e.loaded / e.total; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {error: xhr.statusText}; }
      if (xhr.status === 201) {
        li.dataset.modelId = body.id;
        li.querySelector("progress").value = 100;
        const m = latest[body.id] || body;
        setState(li, m.status, m.status_reason);
      } else {
        li.classList.add("failed");
        setState(li, "failed", body.error || ("HTTP " + xhr.status));
      }
    };
    xhr.onerror = () => setState(li, "failed", "the connection broke; try again");
    xhr.send(file);
  }

  function setState(li, status, reason) {
    const el = li.querySelector(".state");
    el.textContent = status + (reason ? " (" + reason + ")" : "");
    el.className = "state badge status-" + status;
  }

  function files(list) { Array.from(list).forEach(upload); }
  input.addEventListener("change", () => { files(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => files(e.dataTransfer.files));

  const socket = io("/models", {transports: ["websocket", "polling"]});
  socket.on("model_status", (m) => {
    latest[m.id] = m;
    document.querySelectorAll('#upload-list li[data-model-id="' + m.id + '"]').forEach((li) => setState(li, m.status, m.status_reason));
    const tr = document.querySelector('#models-table tr[data-model-id="' + m.id + '"] td.status');
    if (tr) {
      tr.innerHTML = '<span class="badge"></span>';
      tr.firstChild.textContent = m.status;
      tr.firstChild.className = "badge status-" + m.status;
      if (m.status_reason) { const r = document.createElement("div"); r.className = "muted reason"; r.textContent = m.status_reason; tr.appendChild(r); }
    }
  });
})();
