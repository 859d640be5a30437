// The gst-emotion web page: submit a video as a job, follow its windows as they
// finish (Server-Sent Events read with fetch, so a bearer token can be sent), then
// play it with the WebVTT captions and the timeline; watch live streams' bars move.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("gst-emotion-token") || "";

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, Object.assign({}, options, { headers }));
  if (r.status === 401) {
    token = prompt("This server needs a bearer token:") || "";
    sessionStorage.setItem("gst-emotion-token", token);
    return api(path, options);
  }
  return r;
}

async function errorText(r) {
  try { return (await r.json()).error.message; } catch (_) { return r.status + " " + r.statusText; }
}

// Reads a Server-Sent Events response, calling onEvent(name, data) per event.
async function readEvents(path, onEvent) {
  const r = await api(path, { headers: { Accept: "text/event-stream" } });
  if (!r.ok) throw new Error(await errorText(r));
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(name, data);
    }
  }
}

async function health() {
  const r = await fetch("/ping");
  $("health").textContent = r.ok ? "ready" : "loading…";
  $("health").className = "badge " + (r.ok ? "ok" : "bad");
  if (!r.ok) setTimeout(health, 2000);
}

function fmt(t) { return t.toFixed(2); }

function addRow(w) {
  const tr = document.createElement("tr");
  const cells = [
    w.index, fmt(w.start), fmt(w.end),
    w.emotion ? `${w.emotion} ${w.emotion_confidence.toFixed(2)}` : "",
    w.sentiment ? `${w.sentiment} ${w.sentiment_confidence.toFixed(2)}` : "",
    w.faces ? w.faces.length : "",
    w.transcript || "",
  ];
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.appendChild(td);
  }
  $("windows").tBodies[0].appendChild(tr);
}

async function blobUrl(path) {
  const r = await api(path);
  if (!r.ok) throw new Error(await errorText(r));
  return URL.createObjectURL(await r.blob());
}

async function runJob(file, uri) {
  $("job").hidden = false;
  $("windows").tBodies[0].innerHTML = "";
  $("player").hidden = true;
  $("timeline").hidden = true;
  $("progress").value = 0;
  $("job-state").textContent = "uploading…";
  const options = file
    ? { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } }
    : { method: "POST", body: JSON.stringify({ video_path: uri }), headers: { "Content-Type": "application/json" } };
  const r = await api("/v1/jobs", options);
  if (!r.ok) { $("job-state").textContent = "refused: " + await errorText(r); return; }
  const job = await r.json();
  $("job-state").textContent = "job " + job.id + ": queued";
  let final = null;
  await readEvents(job.urls.events, (name, data) => {
    const v = JSON.parse(data);
    if (name === "window") {
      addRow(v);
      $("job-state").textContent = `job ${job.id}: analysed ${fmt(v.end)} s`;
      api(job.urls.status).then((s) => s.json()).then((s) => { if (s.progress != null) $("progress").value = s.progress; });
    } else if (name === "end") {
      final = v;
    }
  });
  if (!final || final.state !== "done") {
    $("job-state").textContent = `job ${job.id}: ${final ? final.state : "lost"} ${final && final.error ? final.error.message : ""}`;
    return;
  }
  $("progress").value = 1;
  $("job-state").textContent = `job ${job.id}: done, ${final.windows} window(s)`;
  $("timeline").src = await blobUrl(job.urls.svg);
  $("timeline").hidden = false;
  if (file) {
    const player = $("player");
    player.src = URL.createObjectURL(file);
    $("captions").src = await blobUrl(job.urls.vtt);
    player.textTracks[0].mode = "showing";
    player.hidden = false;
  }
}

function bars(labels, probs) {
  const box = $("bars");
  box.innerHTML = "";
  for (const label of labels) {
    const row = document.createElement("div");
    row.className = "bar";
    const name = document.createElement("span");
    name.textContent = label;
    const bar = document.createElement("div");
    bar.style.width = Math.round(200 * (probs[label] || 0)) + "px";
    row.append(name, bar);
    box.appendChild(row);
  }
}

async function watch(stream) {
  $("stream-view").hidden = false;
  $("stream-title").textContent = stream.name;
  await readEvents(stream.urls.events, (name, data) => {
    if (name !== "window") return;
    const w = JSON.parse(data);
    if (w.emotion_labels) bars(w.emotion_labels, w.emotion_probs);
    $("stream-text").textContent = `${fmt(w.start)}–${fmt(w.end)} s ${w.emotion || ""} ${w.transcript || ""}`;
  });
}

async function listStreams() {
  const r = await api("/v1/streams");
  if (!r.ok) return;
  const list = $("streams");
  list.innerHTML = "";
  for (const s of (await r.json()).streams) {
    const li = document.createElement("li");
    li.textContent = `${s.name} (${s.state}, ${s.windows} windows) `;
    const b = document.createElement("button");
    b.textContent = "watch";
    b.onclick = () => watch(s);
    li.appendChild(b);
    list.appendChild(li);
  }
}

$("job-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const file = $("file").files[0];
  const uri = $("uri").value.trim();
  if (file || uri) runJob(file, uri).catch((err) => { $("job-state").textContent = "error: " + err.message; });
});
$("file").addEventListener("change", () => { $("drop").firstChild.textContent = $("file").files[0].name + " "; });
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (file) runJob(file, "").catch((err) => { $("job-state").textContent = "error: " + err.message; });
});
$("stream-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/v1/streams", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ uri: $("stream-uri").value.trim(), name: $("stream-name").value.trim() || null }),
  });
  if (!r.ok) alert(await errorText(r));
  listStreams();
});

health();
listStreams();
setInterval(listStreams, 5000);
