// Streams the chosen file to POST /upload (raw body, not base64 through the browser's memory),
// shows the upload progress, then follows the analysis job page.
(function () {
  // the app's URL prefix (btanalyze dashboard --url-prefix, behind a reverse proxy)
  function base() {
    try {
      var cfg = JSON.parse(document.getElementById("_dash-config").textContent);
      return cfg.requests_pathname_prefix || "/";
    } catch (err) { return "/"; }
  }
  function wire() {
    var slot = document.getElementById("upload-slot");
    if (slot && !document.getElementById("upload-file")) {
      var el = document.createElement("input");
      el.type = "file";
      el.id = "upload-file";
      slot.appendChild(el);
    }
    var input = document.getElementById("upload-file");
    if (!input || input.dataset.wired) { return; }
    input.dataset.wired = "1";
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (!file) { return; }
      var bar = document.getElementById("upload-progress");
      var note = document.getElementById("upload-note");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", base() + "upload");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable && bar) { bar.value = Math.round(100 * e.loaded / e.total); }
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {error: xhr.responseText}; }
        if (xhr.status === 200 && body.job) {
          window.location.href = base() + "job/" + body.job;
        } else if (note) {
          note.textContent = "Upload refused: " + (body.error || xhr.statusText);
        }
      };
      xhr.onerror = function () { if (note) { note.textContent = "Upload failed"; } };
      if (note) { note.textContent = "Uploading " + file.name + " (" + file.size + " bytes)…"; }
      xhr.send(file);
    });
  }
  new MutationObserver(wire).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("DOMContentLoaded", wire);
})();
