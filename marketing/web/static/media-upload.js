// The media library's upload form, with a progress bar per file and large files in chunks.
// Without this script the form still works: the browser posts every file at once to /library.
// With it, each file goes through the chunked upload API (/api/v1/media/uploads): a chunk that
// is cut off is asked about (Content-Range: bytes */TOTAL) and sent again from where the server
// stopped.  Every word shown comes from the page (data-msg-* attributes), in the reader's language.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData || !window.File) { return; }
  var list = document.getElementById("upload-progress");
  var chunkBytes = parseInt(form.getAttribute("data-chunk-bytes"), 10) || 4194304;
  var maxFiles = parseInt(form.getAttribute("data-max-files"), 10) || 20;
  var RETRIES = 5;

  function msg(name) { return form.getAttribute("data-msg-" + name) || ""; }
  function field(name) { var el = form.elements[name]; return el ? el.value : ""; }

  function request(method, url, body, headers, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRF-Token", field("csrf_token"));
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) { onProgress(e.loaded); } };
      }
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        resolve({ status: xhr.status, data: data });
      };
      xhr.onerror = function () { resolve({ status: 0, data: null }); };
      xhr.send(body);
    });
  }

  function row(file) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    var status = document.createElement("span");
    status.className = "muted";
    status.setAttribute("role", "status");
    status.textContent = msg("waiting");
    li.appendChild(name); li.appendChild(bar); li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function refusals(data) {
    if (data && data.refusals) {
      return data.refusals.map(function (r) { return r.shown || r.message; }).join("\n");
    }
    return (data && typeof data.detail === "string") ? data.detail : msg("failed");
  }

  async function sendFile(file, ui) {
    ui.status.textContent = msg("sending");
    var start = await request("POST", "/api/v1/media/uploads", JSON.stringify({
      name: file.name, size: file.size, people: field("people") || "unknown",
      consent: field("consent") || null, consent_note: field("consent_note")
    }), { "Content-Type": "application/json" });
    if (start.status !== 201) { return { ok: false, text: refusals(start.data) }; }
    var location = start.data.location;
    var offset = 0;
    var tries = 0;
    while (true) {
      var end = Math.min(offset + chunkBytes, file.size);
      var answer = await request("PUT", location, file.slice(offset, end),
        { "Content-Range": "bytes " + offset + "-" + (end - 1) + "/" + file.size },
        function (loaded) { ui.bar.value = offset + loaded; });
      if (answer.status === 201) {
        ui.bar.value = file.size;
        return { ok: true, text: answer.data && answer.data.duplicate ? msg("duplicate") : msg("done") };
      }
      if (answer.status === 308 || answer.status === 409) {
        offset = answer.data ? answer.data.received : offset;
        ui.bar.value = offset;
        tries = answer.status === 409 ? tries + 1 : 0;
      } else if (answer.status === 0 || answer.status >= 500) {
        tries += 1;  // cut off: ask where the server is, then go on from there
        ui.status.textContent = msg("retry");
        await new Promise(function (r) { setTimeout(r, 500 * tries); });
        var asked = await request("PUT", location, null, { "Content-Range": "bytes */" + file.size });
        if (asked.status === 308 && asked.data) { offset = asked.data.received; }
      } else {
        return { ok: false, text: refusals(answer.data) };
      }
      if (tries > RETRIES) { return { ok: false, text: msg("failed") }; }
      ui.status.textContent = msg("sending");
    }
  }

  form.addEventListener("submit", async function (event) {
    var files = Array.prototype.slice.call(form.elements.files.files || []);
    if (!files.length || files.length > maxFiles) { return; }  // the server says why
    event.preventDefault();
    list.textContent = "";
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var rows = files.map(row);
    var allOk = true;
    for (var i = 0; i < files.length; i++) {
      var outcome = await sendFile(files[i], rows[i]);
      rows[i].status.textContent = outcome.text;
      rows[i].li.className = outcome.ok ? "ok" : "error";
      allOk = allOk && outcome.ok;
    }
    button.disabled = false;
    form.setAttribute("data-finished", allOk ? "ok" : "refused");
    if (allOk) { window.location.assign("/library"); return; }
    var again = document.createElement("a");
    again.href = "/library";
    again.textContent = msg("reload");
    var li = document.createElement("li");
    li.appendChild(again);
    list.appendChild(li);
  });
})();
