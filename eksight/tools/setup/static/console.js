/* eksight findings console. Everything from a finding is put on the page with textContent and DOM APIs, never
   as HTML: findings carry attacker-chosen strings (principal names, user agents, object names). */
"use strict";

(() => {
  const TOKEN_HEADER = "X-Eksight-Token";
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const $ = (id) => document.getElementById(id);
  let selectedId = "";
  let listRequest = 0;
  let detailRequest = 0;
  const charts = [];

  // ---- helpers ----
  function el(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    if (options.title) node.title = options.title;
    for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, value);
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { [TOKEN_HEADER]: token }, cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (_) { body = { ok: false, error: `HTTP ${response.status}` }; }
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function sessionProblem(message) {
    const box = $("session-problem");
    box.textContent = message;
    box.hidden = false;
  }

  const shortTime = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "");
  const toIso = (local) => (local ? `${local.length === 16 ? local + ":00" : local}Z` : "");
  const plural = (n, word) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

  function severityBadge(severity) {
    return el("span", { className: `sev sev-${severity}`, text: severity });
  }

  // ---- source and filters ----
  function fillSelect(select, counts, label) {
    for (const [value, count] of Object.entries(counts)) {
      select.append(el("option", { text: `${label(value)} (${count})`, attrs: { value } }));
    }
  }

  async function loadSource() {
    const { source, archive } = await api("/api/console/source");
    const info = `${plural(source.held, "finding")} from ${source.name}` +
      (source.first_seen ? ` · ${shortTime(source.first_seen)} → ${shortTime(source.last_seen)} UTC` : "");
    $("source-info").textContent = info;
    if (source.capped) {
      const note = $("list-note");
      note.textContent = `The file holds ${source.read.toLocaleString("en-US")} findings; only the newest ` +
        `${source.held.toLocaleString("en-US")} are loaded.`;
      note.className = "note warn";
      note.hidden = false;
    }
    fillSelect($("f-type"), source.types, (t) => t);
    fillSelect($("f-cluster"), source.clusters, (c) => c);
    showArchive(archive);
  }

  function showArchive(archive) {
    const box = $("archive-info");
    box.className = "";
    if (!archive) {
      box.textContent = "No audit archive (start with --archive PATH for evidence and timelines)";
      box.className = "warn";
    } else if (archive.loading) {
      box.textContent = "Reading the audit archive…";
      setTimeout(() => api("/api/console/source").then((r) => showArchive(r.archive)).catch(() => {}), 1500);
    } else if (archive.error) {
      box.textContent = archive.error;
      box.className = "warn";
    } else {
      box.textContent = `Audit archive: ${plural(archive.events, "event")}`;
    }
  }

  function filterQuery() {
    const params = new URLSearchParams();
    const values = {
      severity: $("f-severity").value,
      type: $("f-type").value,
      principal: $("f-principal").value.trim(),
      cluster: $("f-cluster").value,
      since: toIso($("f-since").value),
      until: toIso($("f-until").value),
    };
    for (const [name, value] of Object.entries(values)) if (value) params.set(name, value);
    return params.toString();
  }

  async function loadFindings() {
    const request = ++listRequest;
    const problem = $("filter-problem");
    let result;
    try {
      result = await api(`/api/console/findings?${filterQuery()}`);
    } catch (error) {
      if (request !== listRequest) return;
      problem.textContent = error.message;
      problem.hidden = false;
      return;
    }
    if (request !== listRequest) return;
    problem.hidden = true;
    const shown = result.findings.length;
    $("list-count").textContent = result.truncated
      ? `(first ${shown} of ${result.matched.toLocaleString("en-US")} — narrow the filters)`
      : `(${result.matched.toLocaleString("en-US")})`;
    const body = $("findings").tBodies[0];
    body.replaceChildren(...result.findings.map(findingRow));
    if (!shown) {
      body.append(el("tr", {}, [el("td", { text: "No finding matches these filters.", attrs: { colspan: "3" } })]));
    }
  }

  function findingRow(finding) {
    const open = el("button", { className: "title", text: finding.title, attrs: { type: "button" } });
    open.addEventListener("click", (event) => { event.stopPropagation(); openFinding(finding.id); });
    const row = el("tr", { attrs: { "data-id": finding.id } }, [
      el("td", {}, [severityBadge(finding.severity)]),
      el("td", { className: "when", text: shortTime(finding.first_seen) }),
      el("td", {}, [
        open,
        el("div", { className: "principal", text: finding.principal || "" }),
        el("div", { className: "type", text: finding.type }),
        ...(finding.suppressed_by
          ? [el("div", { className: "suppressed-by", text: `Suppressed: ${finding.suppressed_by}` })]
          : []),
      ]),
    ]);
    if (finding.suppressed_by) row.classList.add("suppressed");
    if (finding.id === selectedId) row.classList.add("selected");
    row.addEventListener("click", () => openFinding(finding.id));
    return row;
  }

  // ---- one finding ----
  async function openFinding(id) {
    selectedId = id;
    for (const row of $("findings").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
    const request = ++detailRequest;
    $("detail-title").textContent = $("archive-info").textContent.startsWith("Reading")
      ? "Loading the finding (after the audit archive is read)…"
      : "Loading the finding…";
    $("detail-hint").hidden = true;
    let detail;
    try {
      detail = await api(`/api/console/finding/${encodeURIComponent(id)}`);
    } catch (error) {
      if (request !== detailRequest) return;
      $("detail-title").textContent = "Cannot open the finding";
      $("detail-body").replaceChildren(el("p", { className: "alert", text: error.message }));
      $("detail-body").hidden = false;
      return;
    }
    if (request !== detailRequest) return;
    renderDetail(detail);
  }

  function facts(pairs) {
    const list = el("dl", { className: "facts" });
    for (const [term, value] of pairs) {
      if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) continue;
      list.append(el("dt", { text: term }));
      list.append(value instanceof Node ? el("dd", {}, [value]) : el("dd", { text: Array.isArray(value) ? value.join(", ") : value }));
    }
    return list;
  }

  function renderDetail(detail) {
    while (charts.length) charts.pop().destroy();
    const f = detail.finding;
    const who = f.principal || {};
    $("detail-title").replaceChildren(severityBadge(f.severity), " ", f.title);
    const body = $("detail-body");
    body.replaceChildren();
    body.hidden = false;

    body.append(facts([
      ["Type", f.type],
      ["Rule", `${f.rule_id || ""} (${f.detector || ""})`],
      ["Principal", who.name],
      ["Identity", who.arn || who.key],
      ["Cluster", [f.cluster, f.account, f.region].filter(Boolean).join(" · ")],
      ["Seen (UTC)", f.first_seen === f.last_seen ? shortTime(f.first_seen) : `${shortTime(f.first_seen)} → ${shortTime(f.last_seen)}`],
      ["Events", `${f.count} (${plural((f.evidence || []).length, "cited audit event")})`],
      ["Source IPs", f.source_ips],
      ["User agents", f.user_agents],
      ["MITRE ATT&CK", f.mitre],
      ["Suppressed by", f.suppressed_by],
      ["Finding id", f.id],
    ]));
    body.append(el("p", { className: "description", text: f.description }));
    if (f.remediation) body.append(el("p", { className: "note", text: `Remediation: ${f.remediation}` }));

    if (detail.archive) showArchive(detail.archive);
    if (detail.anomaly) renderAnomaly(body, detail.anomaly);
    if (detail.problem) body.append(el("p", { className: "alert", text: detail.problem }));
    if (detail.evidence) renderEvidence(body, detail);
    if (detail.activity) renderCharts(body, detail);
    if (detail.timeline) renderTimeline(body, detail);
  }

  function renderAnomaly(body, anomaly) {
    body.append(el("h3", { text: `Why it is unusual (score ${anomaly.score})` }));
    if (anomaly.deviation) body.append(el("p", { className: "deviation", text: `Unusual: ${anomaly.deviation}` }));
    if (anomaly.baseline) body.append(el("p", { className: "baseline", attrs: { "data-role": "baseline" }, text: `Baseline: ${anomaly.baseline}` }));
    const period = anomaly.training_period;
    if (period) {
      body.append(el("p", { className: "note", text: `Learned from ${plural(period.events, "request")} over ${period.days} days ` +
        `(${shortTime(period.start)} → ${shortTime(period.end)} UTC).` }));
    }
    if (anomaly.signals.length) {
      body.append(el("p", {}, anomaly.signals.map((s) => el("span", { className: "tag", text: s.replaceAll("_", " ") }))));
    }
    const box = el("div", { className: "chart-box" }, [el("h4", { text: "Feature frequencies (how often the principal did this before)" })]);
    const grid = el("div", { className: "features", attrs: { "data-role": "features" } });
    for (const feature of anomaly.features) {
      const share = feature.total ? feature.observed / feature.total : 0;
      const bar = el("span", { className: `p-${feature.profile}` });
      bar.style.width = `${Math.max(share * 100, feature.observed ? 2 : 0)}%`;
      grid.append(
        el("span", { className: "fname", text: feature.feature.replaceAll("_", " ") }),
        el("div", {}, [
          el("div", { className: "fvalue", text: feature.value }),
          el("div", { className: "meter", title: `${Math.round(feature.observed)} of ${Math.round(feature.total)} earlier requests (decayed counts)` }, [bar]),
        ]),
        el("span", {}, [
          el("span", { className: `profile p-${feature.profile}`, text: feature.profile }),
          el("span", { className: "note", text: ` ${Math.round(feature.observed)} of ${Math.round(feature.total)}` }),
        ]),
      );
    }
    box.append(grid);
    body.append(box);
  }

  function eventTable(rows, columns, role) {
    const table = el("table", { className: "grid", attrs: { "data-role": role } });
    table.append(el("thead", {}, [el("tr", {}, columns.map(([label]) => el("th", { text: label, attrs: { scope: "col" } })))]));
    const tbody = el("tbody");
    for (const row of rows) {
      const tr = el("tr", { className: row.is_evidence ? "evidence" : "" });
      for (const [, key] of columns) {
        const value = typeof key === "function" ? key(row) : row[key];
        const td = el("td", { text: value === null || value === undefined ? "" : value });
        if (key === "response_code" && row.response_code >= 400) td.className = "denied";
        if (key === "time") td.className = "when";
        tr.append(td);
      }
      tbody.append(tr);
    }
    table.append(tbody);
    return el("div", { className: "table-wrap" }, [table]);
  }

  const target = (row) => [row.resource ? row.resource + (row.subresource ? "/" + row.subresource : "") : "(non-resource)",
    [row.namespace, row.name].filter(Boolean).join("/")].filter(Boolean).join(" ");

  function renderEvidence(body, detail) {
    const cited = (detail.finding.evidence || []).length;
    body.append(el("h3", { text: `Evidence: ${plural(detail.evidence.length, "audit event")}` }));
    if (detail.missing_evidence.length) {
      body.append(el("p", { className: "note warn", text: `${detail.missing_evidence.length} of ${cited} cited events are not in the archive: ` +
        detail.missing_evidence.join(", ") }));
    }
    const columns = [["Time (UTC)", "time"], ["Verb", "verb"], ["Target", target], ["Code", "response_code"],
      ["Decision", "decision"], ["Source IP", "src_ip"], ["User agent", "user_agent"], ["Audit ID", "audit_id"]];
    body.append(eventTable(detail.evidence.map((r) => ({ ...r, time: shortTime(r.time), is_evidence: true })), columns, "evidence"));
    const context = detail.context || [];
    const more = el("details", {}, [el("summary", { text: `Context: ${plural(context.length, "other request")} by the principal or ` +
      `its source IPs within ±${detail.context_minutes} min${detail.context_truncated ? " (first 500)" : ""}` })]);
    const contextColumns = [["Time (UTC)", "time"], ["Principal", "principal_name"], ...columns.slice(1, 6)];
    more.append(eventTable(context.map((r) => ({ ...r, time: shortTime(r.time) })), contextColumns, "context"));
    body.append(more);
  }

  // ---- plots ----
  function markerPlugin(marks) {
    return {
      hooks: {
        draw: [(u) => {
          const { ctx } = u;
          const [from, to] = marks.map((m) => u.valToPos(m, "x", true));
          ctx.save();
          ctx.fillStyle = "rgba(192, 53, 43, 0.18)";
          ctx.fillRect(from - 2, u.bbox.top, Math.max(to - from, 0) + 4, u.bbox.height);
          ctx.strokeStyle = "#c0352b";
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(from, u.bbox.top);
          ctx.lineTo(from, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = "#c0352b";
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          ctx.fillText("finding", from + 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
          ctx.restore();
        }],
      },
    };
  }

  function renderCharts(body, detail) {
    body.append(el("h3", { text: `Activity of ${detail.finding.principal.name} (${plural(detail.requests, "request")} in the archive)` }));
    const activityBox = el("div", { className: "chart-box", attrs: { "data-role": "activity-chart" } }, [
      el("h4", { text: `Requests per ${detail.activity.bucket_seconds === 3600 ? "hour" : `${detail.activity.bucket_seconds / 3600} hours`} (UTC), the finding marked in red` }),
    ]);
    const heatBox = el("div", { className: "chart-box", attrs: { "data-role": "heatmap" } }, [
      el("h4", { text: "Hour of week (UTC)" }),
    ]);
    body.append(el("div", { className: "charts" }, [activityBox, heatBox]));
    const width = Math.max(activityBox.clientWidth - 16, 300);
    const a = detail.activity;
    if (window.uPlot && a.times.length) {
      const bars = uPlot.paths.bars({ size: [0.9, 40] });
      charts.push(new uPlot({
        width, height: 190,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        scales: { x: { time: true } },
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
        series: [
          {},
          { label: "requests", stroke: "#0b5cad", fill: "rgba(11, 92, 173, 0.35)", paths: bars, points: { show: false } },
          { label: "denied/failed", stroke: "#c0352b", fill: "rgba(192, 53, 43, 0.55)", paths: bars, points: { show: false } },
        ],
        axes: [{}, { label: "requests", size: 50 }],
        plugins: [markerPlugin(a.marks)],
      }, [a.times, a.requests, a.failed], activityBox));
    }
    drawHeatmap(heatBox, detail.heatmap, width);
  }

  function drawHeatmap(box, heatmap, width) {
    const canvas = el("canvas", { className: "heatmap-canvas", attrs: { role: "img" } });
    const total = heatmap.cells.flat().reduce((s, n) => s + n, 0);
    const busiest = heatmap.cells.flatMap((row, d) => row.map((n, h) => [n, d, h])).sort((x, y) => y[0] - x[0])[0];
    canvas.setAttribute("aria-label", `Requests by weekday and hour, UTC: ${total} in all` +
      (busiest && busiest[0] ? `; busiest ${WEEKDAYS[busiest[1]]} ${busiest[2]}:00 with ${busiest[0]}` : ""));
    box.append(canvas);
    const ratio = window.devicePixelRatio || 1;
    const height = 190;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const left = 36, top = 4, bottom = 18;
    const cellW = (width - left - 4) / 24, cellH = (height - top - bottom) / 7;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5a6573";
    ctx.textBaseline = "middle";
    heatmap.cells.forEach((row, day) => {
      ctx.fillStyle = "#5a6573";
      ctx.fillText(WEEKDAYS[day], 2, top + day * cellH + cellH / 2);
      row.forEach((count, hour) => {
        // square-root scale: a few busy hours should not wash out the rest
        const level = heatmap.max ? Math.sqrt(count / heatmap.max) : 0;
        ctx.fillStyle = count ? `rgba(11, 92, 173, ${0.12 + 0.88 * level})` : "#f3f5f8";
        ctx.fillRect(left + hour * cellW + 1, top + day * cellH + 1, cellW - 2, cellH - 2);
      });
    });
    ctx.fillStyle = "#5a6573";
    ctx.textBaseline = "alphabetic";
    for (let hour = 0; hour < 24; hour += 3) ctx.fillText(String(hour).padStart(2, "0"), left + hour * cellW + 2, height - 4);
    box.append(el("p", { className: "legend-note", text: `Darker: more requests (max ${heatmap.max} in one hour-of-week cell).` }));
  }

  // ---- timeline ----
  function renderTimeline(body, detail) {
    const tl = detail.timeline;
    body.append(el("h3", { text: `Timeline: ±${tl.hours} h around the finding (bursts of similar requests)` }));
    const list = el("ol", { className: "timeline", attrs: { "data-role": "timeline" } });
    const items = tl.bursts.map((b) => ({ time: b.start, node: burstItem(b) }));
    for (const mark of tl.findings) {
      const node = el("li", { className: "mark" }, [
        el("span", { className: "when", text: shortTime(mark.first_seen) }),
        el("span", {}, [severityBadge(mark.severity), ` ${mark.title}`]),
      ]);
      items.push({ time: mark.first_seen, node });
    }
    items.sort((x, y) => (x.time < y.time ? -1 : x.time > y.time ? 1 : 0)).forEach((i) => list.append(i.node));
    if (!list.children.length) list.append(el("li", { text: "No requests by this principal in the archive around the finding." }));
    body.append(list);
    const during = list.querySelector("li.during");
    if (during) list.scrollTop = Math.max(0, during.offsetTop - 80);
    if (tl.truncated) body.append(el("p", { className: "note", text: "Only the 500 bursts nearest the finding are shown." }));
  }

  function burstItem(b) {
    const where = b.namespace ? `${b.namespace}/` : "";
    const targetText = b.objects === 1 ? `${b.resource} ${where}${b.names[0]}`
      : b.objects ? `${b.resource} ${where}(${b.objects} objects)` : (b.namespace ? `${b.resource} in ${b.namespace}` : b.resource);
    const line = el("span", {}, [
      el("strong", { text: b.verb }), ` ${targetText} ×${b.count}`,
      b.failed ? el("span", { className: "denied", text: ` ${b.failed} denied/failed` }) : null,
      b.src_ips.length ? ` from ${b.src_ips.join(", ")}` : "",
    ]);
    if (b.firsts.length) line.append(el("div", { className: "firsts", text: `★ ${b.firsts.join("; ")}` }));
    return el("li", { className: b.during_finding ? "during" : "" }, [el("span", { className: "when", text: shortTime(b.start) }), line]);
  }

  // ---- start ----
  function start() {
    if (!token) {
      sessionProblem("Open the address printed by eksight ui: it carries this session's key (#token=…).");
      return;
    }
    let typing = 0;
    $("filters").addEventListener("change", loadFindings);
    $("filters").addEventListener("input", (event) => {
      if (event.target.id !== "f-principal") return;
      clearTimeout(typing);
      typing = setTimeout(loadFindings, 250);
    });
    $("filters").addEventListener("reset", () => setTimeout(loadFindings, 0));
    $("filters").addEventListener("submit", (event) => { event.preventDefault(); loadFindings(); });
    loadSource().then(loadFindings).catch((error) => sessionProblem(error.message));
  }

  start();
})();
