// eksight setup wizard: builds eksight.config.json from the form and lets the server validate it
// (eksight.config.parse) as you type. Plain JavaScript, no dependencies, works offline.
"use strict";

(() => {
  const TOKEN_HEADER = "X-Eksight-Token";
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  const $ = (id) => document.getElementById(id);

  let meta = null;
  let regionCount = 0;
  let validateTimer = null;
  let validateSeq = 0;
  let latest = null; // {config, data, local}
  let previewed = null; // {configText, stacks: Map(stack name → its summary)}: the last synthesized preview
  let showAll = false;
  const touched = new Set();

  // ---- server calls ---------------------------------------------------------------------------------
  function api(path, body) {
    const headers = { [TOKEN_HEADER]: token };
    if (body === undefined) return fetch(path, { headers, cache: "no-store" });
    headers["Content-Type"] = "application/json";
    return fetch(path, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store" });
  }

  function sessionProblem(text) {
    const box = $("session-problem");
    box.textContent = text;
    box.hidden = false;
    for (const control of $("wizard").querySelectorAll("input, select, textarea, button")) control.disabled = true;
    $("preview-resources").disabled = true;
  }

  // ---- reading the form -------------------------------------------------------------------------------
  function getPath(object, dotted) {
    return dotted.split(".").reduce((value, key) => (value == null ? undefined : value[key]), object);
  }

  function splitList(text) {
    return text.split(/[\s,;]+/).map((item) => item.trim()).filter(Boolean);
  }

  // The answer a control gives, or null for "not answered" (eksight's default then applies).
  function controlValue(control, local) {
    if (control.type === "checkbox") return control.checked;
    if (control.type === "number") {
      if (control.validity.badInput) {
        local.push({ element: control, message: "Enter a whole number.", local: true });
        return null;
      }
      return control.value === "" ? null : Number(control.value);
    }
    const text = control.value.trim();
    return text === "" ? null : text;
  }

  function parseTags(text) {
    const tags = {};
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf("=");
      const key = (at < 0 ? line : line.slice(0, at)).trim();
      tags[key] = at < 0 ? "" : line.slice(at + 1).trim();
    }
    return tags;
  }

  // The form as eksight.tools.setup.answers.Answers (the server maps it to a config with answers_to_config).
  function formToAnswers() {
    const local = [];
    const answers = { regions: [] };
    for (const control of document.querySelectorAll("#wizard [data-answer]")) {
      if (control.closest("#regions")) continue;
      const name = control.dataset.answer;
      if (name === "tags") answers.tags = parseTags(control.value);
      else if (name === "notify_emails") answers.notify_emails = splitList(control.value);
      else answers[name] = controlValue(control, local);
    }
    if (!$("archive-transition-on").checked) answers.transition_days = "never";

    for (const card of document.querySelectorAll("#regions .region")) {
      const entry = {};
      for (const control of card.querySelectorAll("[data-answer]")) {
        const name = control.dataset.answer;
        entry[name] = name === "clusters" ? splitList(control.value) : controlValue(control, local);
      }
      if (!entry.region) {
        if (entry.clusters.length || entry.bucket_arn || entry.kms_key_arn || entry.sns_topic_arn) {
          const select = card.querySelector("[data-field='region']");
          local.push({ element: select, message: "Choose the region of these clusters.", local: true });
        }
        continue;
      }
      answers.regions.push(entry);
    }
    return { answers, local };
  }

  // ---- showing problems ---------------------------------------------------------------------------------
  function fieldElement(problem) {
    if (problem.element) return problem.element;
    if (!problem.field || problem.field === "(form)") return null;
    return document.querySelector(`[data-path="${CSS.escape(problem.field)}"]`);
  }

  function errorElementFor(control) {
    return $(`${control.id}-error`);
  }

  function clearErrors() {
    for (const control of document.querySelectorAll("[aria-invalid='true']")) control.removeAttribute("aria-invalid");
    for (const message of document.querySelectorAll(".field-error")) {
      message.textContent = "";
      message.hidden = true;
    }
  }

  function revealAndFocus(control) {
    for (let node = control.parentElement; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    control.focus();
  }

  function label(problem, control) {
    if (control && control.id) {
      const labelElement = document.querySelector(`label[for="${CSS.escape(control.id)}"]`);
      if (labelElement) return labelElement.textContent.replace("(optional)", "").trim();
    }
    return problem.path || "config";
  }

  function render() {
    if (!latest) return;
    const { data, local } = latest;
    const problems = [...local, ...(data.problems || [])];
    clearErrors();
    const byControl = new Map();
    for (const problem of problems) {
      const control = fieldElement(problem);
      problem.control = control;
      if (!control) continue;
      if (!(showAll || problem.local || touched.has(control.id) || control.id === "regions")) continue;
      if (control.id === "regions" && !showAll && touched.size === 0) continue;
      if (!byControl.has(control)) byControl.set(control, []);
      byControl.get(control).push(problem.message);
    }
    for (const [control, messages] of byControl) {
      control.setAttribute("aria-invalid", "true");
      const message = errorElementFor(control);
      if (message) {
        message.textContent = messages.join(" ");
        message.hidden = false;
      }
    }

    const summary = $("summary");
    const list = $("problem-list");
    list.replaceChildren();
    if (problems.length === 0) {
      const regions = Object.keys(latest.config.regions);
      const clusters = regions.reduce((n, r) => n + latest.config.regions[r].clusters.length, 0);
      summary.className = "summary ok";
      summary.textContent = `Ready to deploy: ${regions.length} region(s), ${clusters} cluster(s).`;
    } else {
      summary.className = "summary bad";
      summary.textContent = `${problems.length} problem${problems.length === 1 ? "" : "s"} to fix before downloading.`;
      for (const problem of problems) {
        const item = document.createElement("li");
        if (problem.control && problem.control.id) {
          const link = document.createElement("a");
          link.href = `#${problem.control.id}`;
          link.textContent = label(problem, problem.control);
          link.addEventListener("click", (event) => {
            event.preventDefault();
            showAll = true;
            render();
            revealAndFocus(problem.control);
          });
          item.append(link, `: ${problem.message}`);
        } else {
          item.textContent = `${problem.path || "config"}: ${problem.message}`;
        }
        list.append(item);
      }
    }
    $("config-preview").textContent = data.config_text || "";
    renderResources(data);
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // The stacks a valid config deploys; what each creates once the preview has synthesized this very config.
  function renderResources(data) {
    const box = $("resources");
    box.replaceChildren();
    if (!data.stacks) {
      box.append(element("p", "Shown once the settings are valid.", "hint"));
      return;
    }
    const current = previewed && previewed.configText === data.config_text;
    if (previewed && !current && $("synth-output").getAttribute("aria-busy") !== "true") {
      $("synth-output").replaceChildren(element("p", "The settings changed: preview the resources again.", "hint"));
    }
    for (const name of data.stacks) {
      const block = element("div", undefined, "stack");
      block.append(element("h4", name));
      const stack = current && previewed.stacks.get(name);
      if (stack) {
        const table = element("dl");
        for (const line of stack.lines) table.append(element("dt", line.label), element("dd", line.text));
        table.append(element("dt", "resources"), element("dd", `${stack.resources} CloudFormation resources`));
        block.append(table);
      } else {
        block.append(element("p", "Preview the resources to see what this stack creates.", "hint"));
      }
      box.append(block);
    }
  }

  // ---- validation -----------------------------------------------------------------------------------------
  async function validate() {
    clearTimeout(validateTimer);
    const seq = ++validateSeq;
    const { answers, local } = formToAnswers();
    const response = await api("/api/validate", { answers });
    if (response.status === 403 || response.status === 421) {
      sessionProblem("This page has no valid session key. Open the address printed by eksight ui.");
      return null;
    }
    const data = await response.json();
    if (seq !== validateSeq) return null; // a newer draft is being checked
    latest = { answers, config: data.config, data, local };
    render();
    return latest;
  }

  function scheduleValidate() {
    clearTimeout(validateTimer);
    validateTimer = setTimeout(validate, 200);
  }

  async function ready() {
    const state = await validate();
    if (!state) return null;
    if (state.local.length || !state.data.ok) {
      showAll = true;
      render();
      const first = [...state.local, ...state.data.problems].map(fieldElement).find(Boolean);
      if (first) revealAndFocus(first);
      return null;
    }
    return state;
  }

  // ---- regions ---------------------------------------------------------------------------------------------
  function fillRegionSelect(select) {
    select.append(new Option("Choose a region…", ""));
    for (const group of meta.regions) {
      const optgroup = document.createElement("optgroup");
      optgroup.label = group.label;
      for (const region of group.regions) {
        const text = region.description ? `${region.name} — ${region.description}` : region.name;
        optgroup.append(new Option(text, region.name));
      }
      select.append(optgroup);
    }
  }

  function syncRegions() {
    const cards = [...document.querySelectorAll("#regions .region")];
    const chosen = cards.map((card) => card.querySelector("[data-field='region']").value);
    cards.forEach((card, index) => {
      card.querySelector(".region-number").textContent = String(index + 1);
      const region = chosen[index];
      const select = card.querySelector("[data-field='region']");
      for (const option of select.querySelectorAll("option")) {
        option.disabled = option.value !== "" && option.value !== region && chosen.includes(option.value);
      }
      for (const control of card.querySelectorAll("[data-field]")) {
        const field = control.dataset.field;
        if (!region) delete control.dataset.path;
        else control.dataset.path = field === "region" ? `regions.${region}` : `regions.${region}.${field}`;
      }
      card.querySelector(".remove-region").hidden = cards.length === 1;
    });
  }

  function addRegion(focus) {
    const number = ++regionCount;
    const card = $("region-template").content.firstElementChild.cloneNode(true);
    for (const node of card.querySelectorAll("[data-id]")) node.id = `r${number}-${node.dataset.id}`;
    for (const labelNode of card.querySelectorAll("label[data-for]")) labelNode.htmlFor = `r${number}-${labelNode.dataset.for}`;
    for (const control of card.querySelectorAll("[data-field]")) {
      const described = [`${control.id}-hint`, `${control.id}-error`].filter((id) => card.querySelector(`#${id}`));
      control.setAttribute("aria-describedby", described.join(" "));
    }
    const select = card.querySelector("[data-field='region']");
    fillRegionSelect(select);
    card.querySelector(".discover").addEventListener("click", () => discover(card));
    card.querySelector(".remove-region").addEventListener("click", () => {
      card.remove();
      syncRegions();
      $("add-region").focus();
      scheduleValidate();
    });
    $("regions").append(card);
    syncRegions();
    if (focus) select.focus();
  }

  async function discover(card) {
    const select = card.querySelector("[data-field='region']");
    const status = card.querySelector(".discover-status");
    const button = card.querySelector(".discover");
    if (!select.value) {
      status.textContent = "Choose a region first.";
      return;
    }
    button.disabled = true;
    status.textContent = `Listing the clusters in ${select.value}…`;
    try {
      const response = await api("/api/discover", { region: select.value });
      const data = await response.json();
      if (!data.ok) {
        status.textContent = data.message || data.error;
        return;
      }
      const box = card.querySelector("[data-field='clusters']");
      const current = splitList(box.value);
      const added = data.clusters.filter((name) => !current.includes(name));
      box.value = [...current, ...added].join("\n");
      touched.add(box.id);
      status.textContent = data.clusters.length
        ? `Found ${data.clusters.length}: ${data.clusters.join(", ")}. Remove the ones eksight should not watch.`
        : `No clusters in ${select.value}.`;
      scheduleValidate();
    } catch (error) {
      status.textContent = `Could not list clusters: ${error}`;
    } finally {
      button.disabled = false;
    }
  }

  // ---- outputs -------------------------------------------------------------------------------------------------
  function saveBlob(blob, name) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  }

  async function downloadConfig() {
    const state = await ready();
    if (!state) {
      $("download-status").textContent = "Fix the problems shown first.";
      return;
    }
    saveBlob(new Blob([state.data.config_text], { type: "application/json" }), meta.config_name);
    $("download-status").textContent = `Downloaded ${meta.config_name}.`;
  }

  async function downloadBundle() {
    const status = $("download-status");
    const state = await ready();
    if (!state) {
      status.textContent = "Fix the problems shown first.";
      return;
    }
    const button = $("download-bundle");
    button.disabled = true;
    status.textContent = "Building the bundle…";
    try {
      const response = await api("/api/bundle", { answers: state.answers });
      if (!response.ok) {
        const data = await response.json();
        status.textContent = data.error || "The server refused the config; see the problems.";
        if (data.problems) {
          latest = { ...latest, data: { ...latest.data, ok: false, problems: data.problems } };
          showAll = true;
          render();
        }
        return;
      }
      const blob = await response.blob();
      saveBlob(blob, meta.bundle_name);
      status.textContent = `Downloaded ${meta.bundle_name} (${Math.round(blob.size / 1024)} KiB). Upload it to CloudShell.`;
    } finally {
      button.disabled = false;
    }
  }

  async function previewResources() {
    const button = $("preview-resources");
    const output = $("synth-output");
    const state = await ready();
    if (!state) {
      output.replaceChildren(element("p", "Fix the problems shown first.", "hint"));
      return;
    }
    button.disabled = true;
    output.setAttribute("aria-busy", "true");
    const started = Date.now();
    const progress = element("p", "Synthesizing the templates…", "progress");
    output.replaceChildren(progress);
    const tick = setInterval(() => {
      progress.textContent = `Synthesizing the templates… ${Math.round((Date.now() - started) / 1000)} s`;
    }, 1000);
    try {
      const response = await api("/api/preview", { answers: state.answers });
      const data = await response.json();
      output.replaceChildren();
      if (!data.ok) {
        output.append(element("p", "Synthesis failed:", "summary bad"), element("pre", data.message || data.error));
        return;
      }
      previewed = {
        configText: state.data.config_text,
        stacks: new Map(data.stacks.map((stack) => [stack.stack, stack])),
      };
      output.append(element("p", `${data.stacks.length} stacks synthesized in ${data.seconds} s.`, "summary ok"));
      renderResources(latest.data);
    } catch (error) {
      output.replaceChildren(element("p", `Synthesis failed: ${error}`, "summary bad"));
    } finally {
      clearInterval(tick);
      output.setAttribute("aria-busy", "false");
      button.disabled = false;
    }
  }

  async function copyCommand() {
    const text = $("command").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-status").textContent = "Copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("command"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      $("copy-status").textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  }

  // ---- start -------------------------------------------------------------------------------------------------------
  async function start() {
    if (!token) {
      sessionProblem("Open the address printed by eksight ui: it carries this session's key (#token=…).");
      return;
    }
    const response = await api("/api/meta");
    if (!response.ok) {
      sessionProblem("This page's session key is not valid for this wizard. Open the address printed by eksight ui.");
      return;
    }
    meta = await response.json();
    for (const select of document.querySelectorAll("select[data-options]")) {
      for (const value of meta[select.dataset.options]) select.append(new Option(value, value));
      select.value = getPath(meta.defaults, select.dataset.path.slice("defaults.".length));
    }
    for (const input of document.querySelectorAll("input[data-default]")) {
      const value = getPath(meta.defaults, input.dataset.default);
      if (value !== null && value !== undefined) input.placeholder = String(value);
    }
    $("command").textContent = meta.command;
    addRegion(false);

    const form = $("wizard");
    const onEdit = (event) => {
      if (event.target.id) touched.add(event.target.id);
      if (event.target.dataset && event.target.dataset.field === "region") syncRegions();
      if (event.target.id === "archive-transition-on") {
        $("archive-transition-group").hidden = !event.target.checked;
      }
      scheduleValidate();
    };
    form.addEventListener("input", onEdit);
    form.addEventListener("change", onEdit);
    form.addEventListener("submit", (event) => event.preventDefault());
    $("add-region").addEventListener("click", () => {
      addRegion(true);
      scheduleValidate();
    });
    $("download-config").addEventListener("click", downloadConfig);
    $("download-bundle").addEventListener("click", downloadBundle);
    $("preview-resources").addEventListener("click", previewResources);
    $("copy-command").addEventListener("click", copyCommand);
    document.body.dataset.ready = "true";
    await validate();
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => sessionProblem(`The wizard could not start: ${error}`));
  });
})();
