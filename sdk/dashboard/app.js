// The dashboard's views: sign in, the jobs list, a job (curves, events, checkpoints, cancel,
// evaluate, trajectories) and the start form. Routes live in the URL's fragment (#/jobs,
// #/job/<id>, #/start); the token never does.
//
// When a view has shown its first data it sets a performance mark "ac:ready:<view>" and
// body[data-ready="<view>"], so that tests (and curious users) can read how long a page took.
"use strict";

(function () {
  const { h, append, clear, replace, num, pct, pvalue, when, ci, json, statusBadge } = window.DOM;
  const view = document.getElementById("view");
  const notice = document.getElementById("notice");
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  const POLL_JOB_MS = 3000;
  const POLL_LIST_MS = 5000;
  let current = null; // the view on screen: { stop() }
  let discovery = null; // rpc.discover's document, once per page load

  // ---- plumbing -------------------------------------------------------------------------------

  // A view's lifetime: its timers stop when the user goes elsewhere.
  function lifetime() {
    const timers = new Set();
    const self = {
      stopped: false,
      cleanups: [],
      later(fn, ms) {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!self.stopped) fn();
        }, ms);
        timers.add(t);
      },
      stop() {
        self.stopped = true;
        timers.forEach(clearTimeout);
        self.cleanups.forEach((f) => f());
      },
    };
    return self;
  }

  function ready(name) {
    if (document.body.dataset.ready === name) return;
    performance.mark("ac:ready:" + name);
    document.body.dataset.ready = name;
  }

  function errorText(e) {
    if (e instanceof AC.RpcError) {
      if (e.code === -32003) return "This token lacks the permission " + ((e.data && e.data.required) || "") + ".";
      return e.describe() + " (" + e.code + ")";
    }
    return String((e && e.message) || e);
  }

  function errorBox(e) {
    return h("p", { class: "error" }, errorText(e));
  }

  async function discover() {
    if (!discovery) discovery = await AC.call("rpc.discover", {});
    return discovery;
  }

  // the rate-limit notice: a countdown while any class of calls waits
  let noticeTimer = null;
  function showPauses() {
    const pauses = AC.pauses();
    if (pauses.length === 0) {
      notice.hidden = true;
      clearInterval(noticeTimer);
      noticeTimer = null;
      return;
    }
    const left = Math.max(...pauses.map(([, t]) => t)) - Date.now();
    notice.hidden = false;
    notice.textContent = "Waiting for the server's rate limit (" + pauses.map(([c]) => c).join(", ") +
      "): next call in " + Math.ceil(left / 1000) + " s. The dashboard backs off rather than retry at once.";
  }
  AC.onPause(() => {
    showPauses();
    if (!noticeTimer) noticeTimer = setInterval(showPauses, 500);
  });

  AC.onUnauthorized((err) => {
    AC.clearToken();
    sessionStorage.setItem("agentcore.signin_message", "The server refused the token" +
      (err && err.data && err.data.error ? ": " + err.data.error : "") + ". Paste a valid one.");
    if (location.hash !== "#/signin") location.hash = "#/signin";
  });

  function header() {
    const token = AC.token();
    document.getElementById("nav").hidden = !token;
    document.getElementById("signout").hidden = !token;
    const who = document.getElementById("who");
    if (!token) {
      who.textContent = "";
      return;
    }
    const c = AC.claims(token);
    const perms = Array.isArray(c.permissions) ? c.permissions.join(", ") : typeof c.scope === "string" ? c.scope : "";
    who.textContent = "signed in as " + (c.sub !== undefined ? String(c.sub) : "?");
    who.title = perms;
  }

  document.getElementById("signout").addEventListener("click", () => {
    AC.clearToken();
    location.hash = "#/signin";
  });

  function route() {
    if (current) current.stop();
    current = lifetime();
    delete document.body.dataset.ready;
    header();
    const hash = location.hash || "#/jobs";
    if (!AC.token() && hash !== "#/signin") {
      sessionStorage.setItem("agentcore.after_signin", hash);
      location.hash = "#/signin";
      return;
    }
    const m = /^#\/job\/([0-9a-fA-F-]{36})$/.exec(hash);
    if (hash === "#/signin") signinView(current);
    else if (m) jobView(current, m[1]);
    else if (hash === "#/start") startView(current);
    else jobsView(current);
  }

  // ---- sign in ---------------------------------------------------------------------------------

  function signinView(life) {
    const input = h("textarea", { id: "token", rows: 4, autocomplete: "off", spellcheck: "false",
      placeholder: "eyJhbGciOiJIUzI1NiIs..." });
    const msg = h("p", { class: "error", id: "signin-error" }, sessionStorage.getItem("agentcore.signin_message") || "");
    sessionStorage.removeItem("agentcore.signin_message");
    const button = h("button", { type: "submit" }, "Sign in");
    const form = h("form", { id: "signin", class: "card narrow" },
      h("h1", {}, "Sign in"),
      h("p", {}, "Paste a bearer token (a JWT from ", h("code", {}, "agentcore token"),
        "). It stays in this tab's session storage and is sent only in the Authorization header of API calls."),
      h("label", { for: "token" }, "Token"), input, h("div", { class: "row" }, button), msg);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = input.value.trim().replace(/^Bearer\s+/i, "");
      if (!t) return;
      button.disabled = true;
      msg.textContent = "";
      AC.setToken(t);
      try {
        await AC.call("training.list_jobs", { limit: 1 });
        const next = sessionStorage.getItem("agentcore.after_signin") || "#/jobs";
        sessionStorage.removeItem("agentcore.after_signin");
        location.hash = next === "#/signin" ? "#/jobs" : next;
      } catch (e) {
        if (e.code !== -32002) AC.clearToken(); // a 401 has cleared it already
        msg.textContent = e.code === -32002 ? "The server refused the token" + (e.data && e.data.error ? ": " + e.data.error : "") + "." : errorText(e);
        button.disabled = false;
        header();
      }
    });
    replace(view, form);
    input.focus();
    ready("signin");
  }

  // ---- jobs list -------------------------------------------------------------------------------

  const PAGE = 50;
  const listState = { offset: 0, status: "" };

  function progressCell(cur, total) {
    const c = Number(cur) || 0;
    const t = Number(total) || 0;
    return h("td", { class: "progress" }, h("progress", { max: t || 1, value: Math.min(c, t || 1) }),
      " " + c + "/" + t + " (" + (t ? ((100 * c) / t).toFixed(0) : "0") + " %)");
  }

  function jobsView(life) {
    const filter = h("select", { id: "status-filter" },
      ["", "queued", "running", "completed", "failed", "cancelled"].map((s) =>
        h("option", { value: s, selected: s === listState.status }, s || "all statuses")));
    const info = h("p", { class: "muted", id: "jobs-info" }, "loading…");
    const body = h("tbody", {});
    const prev = h("button", { type: "button", id: "jobs-prev" }, "‹ Newer");
    const next = h("button", { type: "button", id: "jobs-next" }, "Older ›");
    const pageInfo = h("span", { id: "jobs-page" });
    const err = h("div", {});
    replace(view,
      h("section", { class: "card" },
        h("div", { class: "row" }, h("h1", {}, "Jobs"), h("span", { class: "spacer" }),
          h("label", {}, "Status ", filter), h("a", { class: "button", href: "#/start" }, "Start a job")),
        info, err,
        h("table", { id: "jobs", class: "data" },
          h("thead", {}, h("tr", {}, ["Job", "Agent", "Status", "Progress", "Cost / budget (USD)", "Created"].map((t) => h("th", {}, t)))),
          body),
        h("div", { class: "pager" }, prev, pageInfo, next)));
    let total = 0;
    let refreshes = 0;

    // One refresh loop per lifetime: paging or filtering starts a new lifetime, and a call still
    // in flight for the old one renders nothing and schedules nothing.
    async function load(l) {
      const params = { limit: PAGE, offset: listState.offset };
      if (listState.status) params.status = listState.status;
      try {
        const r = await AC.call("training.list_jobs", params);
        if (l.stopped) return;
        total = r.total_count;
        replace(body, r.jobs.map((j) =>
          h("tr", { dataset: { jobId: j.job_id, status: j.status } },
            h("td", { class: "mono" }, h("a", { href: "#/job/" + encodeURIComponent(j.job_id) }, j.job_id)),
            h("td", {}, j.agent_id),
            h("td", {}, statusBadge(j.status)),
            progressCell(j.current_iteration, j.total_iterations),
            h("td", { class: "num" }, (j.cost_usd || "–") + " / " + (j.budget_usd || "–")),
            h("td", {}, when(j.created_at)))));
        if (r.jobs.length === 0)
          append(body, h("tr", {}, h("td", { colspan: 6, class: "muted" },
            listState.offset > 0 ? "No more jobs." : "No jobs yet: start one.")));
        const pages = Math.max(1, Math.ceil(total / PAGE));
        pageInfo.textContent = "page " + (Math.floor(listState.offset / PAGE) + 1) + " of " + pages;
        prev.disabled = listState.offset === 0;
        next.disabled = !r.has_more;
        refreshes++;
        info.textContent = total + " job" + (total === 1 ? "" : "s") + " · refreshed " + new Date().toLocaleTimeString();
        info.dataset.refreshes = String(refreshes);
        clear(err);
      } catch (e) {
        if (l.stopped) return;
        replace(err, errorBox(e));
      }
      ready("jobs");
      l.later(() => load(l), POLL_LIST_MS); // live refresh, one call at a time
    }

    function restart() {
      life.stop();
      life = current = lifetime();
      load(life);
    }
    filter.addEventListener("change", () => {
      listState.status = filter.value;
      listState.offset = 0;
      restart();
    });
    prev.addEventListener("click", () => {
      listState.offset = Math.max(0, listState.offset - PAGE);
      restart();
    });
    next.addEventListener("click", () => {
      listState.offset += PAGE;
      restart();
    });
    load(life);
  }

  // ---- a job -------------------------------------------------------------------------------------

  function kv(pairs) {
    return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v, id]) => [h("dt", {}, k), h("dd", id ? { id: id } : {}, v)]));
  }

  function jobView(life, id) {
    const summary = h("div", { id: "job-summary" }, h("p", { class: "muted" }, "loading…"));
    const actions = h("div", { class: "row", id: "job-actions" });
    const actionMsg = h("div", { id: "action-result" });
    const evalBox = h("div", { id: "evaluation" });
    const panels = window.Charts.CURVES.map((c) => window.Charts.panel(c));
    life.cleanups.push(() => panels.forEach((p) => p.destroy()));
    const curvesNote = h("p", { class: "muted small", id: "curves-info" });
    const ckptBody = h("tbody", {});
    const eventsBody = h("tbody", {});
    const eventsMore = h("button", { type: "button", id: "events-more", hidden: true }, "More events…");
    const traj = trajectoryBrowser(life, id);
    replace(view,
      h("section", { class: "card" }, h("div", { class: "row" }, h("h1", {}, "Job ", h("span", { class: "mono" }, id)),
        h("span", { class: "spacer" }), h("a", { href: "#/jobs" }, "← all jobs")), summary, actions, actionMsg),
      evalBox,
      h("section", { class: "card" }, h("h2", {}, "Learning curves"), curvesNote,
        h("div", { class: "charts", id: "curves" }, panels.map((p) => p.el))),
      h("section", { class: "card" }, h("h2", {}, "Checkpoints"),
        h("table", { id: "checkpoints", class: "data" },
          h("thead", {}, h("tr", {}, ["Checkpoint", "Iteration", "Validation accuracy", "Created", ""].map((t) => h("th", {}, t)))),
          ckptBody)),
      h("section", { class: "card" }, h("h2", {}, "Events"),
        h("table", { id: "events", class: "data" },
          h("thead", {}, h("tr", {}, ["#", "Time", "Event", "Data"].map((t) => h("th", {}, t)))), eventsBody),
        eventsMore),
      traj.el);

    const rows = []; // every metrics row so far, by iteration
    let nextIteration = 0;
    let eventCursor = 0;
    let status = null;
    let latestCkpt;

    async function loadMetrics() {
      for (;;) { // follow the pages (10000 rows each) to the end
        const r = await AC.call("training.get_metrics", { job_id: id, from_iteration: nextIteration, limit: 10000 });
        for (const row of r.metrics) rows.push(row);
        if (r.metrics.length) nextIteration = r.metrics[r.metrics.length - 1].iteration + 1;
        if (!r.has_more) break;
        nextIteration = r.next_from_iteration;
      }
      panels.forEach((p) => p.update(rows));
      curvesNote.textContent = rows.length + " iterations";
      curvesNote.dataset.rows = String(rows.length);
    }

    async function loadEvents() {
      // newest first on screen; pages of 1000 from the cursor on
      let pages = 0;
      for (;;) {
        const r = await AC.call("training.list_events", { job_id: id, cursor: eventCursor, limit: 1000 });
        for (const e of r.events)
          eventsBody.insertBefore(h("tr", { dataset: { seq: e.seq, event: e.event } },
            h("td", { class: "num" }, String(e.seq)), h("td", {}, when(e.timestamp)), h("td", {}, e.event),
            h("td", { class: "json" }, json(e.data))), eventsBody.firstChild);
        eventCursor = r.next_cursor;
        if (!r.has_more || ++pages >= 5) {
          eventsMore.hidden = !r.has_more;
          break;
        }
      }
    }
    eventsMore.addEventListener("click", () => loadEvents().catch((e) => append(eventsBody, h("tr", {}, h("td", { colspan: 4 }, errorBox(e))))));

    async function loadCheckpoints() {
      const r = await AC.call("training.list_checkpoints", { job_id: id });
      replace(ckptBody, r.checkpoints.length === 0 ? h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No checkpoint yet.")) :
        r.checkpoints.map((c) => h("tr", { dataset: { checkpointId: c.checkpoint_id } },
          h("td", { class: "mono" }, c.checkpoint_id), h("td", { class: "num" }, String(c.iteration)),
          h("td", { class: "num" }, c.validation_accuracy === null || c.validation_accuracy === undefined ? "–" : pct(c.validation_accuracy)),
          h("td", {}, when(c.created_at)),
          h("td", {}, c.is_best ? h("span", { class: "badge best" }, "best") : null, " ",
            c.is_latest ? h("span", { class: "badge" }, "latest") : null))));
      return r;
    }

    function renderSummary(s) {
      const remaining = s.budget_remaining_percent;
      replace(summary,
        h("div", { class: "row" }, statusBadge(s.status), h("span", { class: "muted" }, "agent "), h("strong", {}, s.agent_id)),
        h("div", { class: "progressline" }, h("progress", { max: s.total_iterations || 1, value: s.current_iteration || 0 }),
          h("span", { id: "job-progress" }, " iteration " + s.current_iteration + " of " + s.total_iterations +
            " (" + s.progress_percent + " %)")),
        kv([
          ["Cost / budget", "$" + s.cost_usd + " of $" + s.budget_usd + (remaining !== undefined ? " (" + remaining + " % left)" : ""), "job-cost"],
          ["Created", when(s.created_at)],
          ["Started", when(s.started_at)],
          s.finished_at ? ["Finished", when(s.finished_at)] : null,
          s.status === "running" && s.estimated_completion ? ["Estimated completion", when(s.estimated_completion)] : null,
          s.cancelled_at ? ["Cancelled", when(s.cancelled_at) + (s.cancel_reason ? " (" + s.cancel_reason + ")" : ""), "job-cancel-reason"] : null,
          ["Reward (last iteration)", num(s.metrics && s.metrics.avg_reward)],
          ["Validation accuracy", s.metrics && s.metrics.validation_accuracy !== null && s.metrics.validation_accuracy !== undefined ? pct(s.metrics.validation_accuracy) : "–"],
          ["Trajectories", String((s.metrics && s.metrics.trajectories_generated) || 0) +
            (s.trajectories_stored !== undefined ? " (" + s.trajectories_stored + " stored)" : "")],
          ["Best checkpoint", s.best_checkpoint_id || "–"],
          s.seed !== undefined ? ["Seed", String(s.seed)] : null,
          s.error ? ["Error", json(s.error), "job-error"] : null,
          s.store_error ? ["Store", s.store_error] : null,
        ]));
      renderActions(s);
    }

    // the buttons; a refresh leaves them alone while the user confirms a cancel or waits for one
    let acting = null; // null | "confirm" | "cancelling"
    let evaluating = false;
    function renderActions(s) {
      if (acting) return;
      const buttons = [];
      if (!FINAL.has(s.status)) {
        const cancelBtn = h("button", { type: "button", id: "cancel", class: "danger" }, "Cancel job");
        cancelBtn.addEventListener("click", () => {
          // a second, explicit step instead of a browser dialog
          acting = "confirm";
          replace(actions, h("span", {}, "Cancel this job? A running job stops at its next safe point and keeps a checkpoint. "),
            h("button", { type: "button", id: "cancel-confirm", class: "danger", onclick: doCancel }, "Yes, cancel"),
            h("button", { type: "button", id: "cancel-keep", onclick: () => { acting = null; renderActions(status); } },
              "Keep it running"));
        });
        buttons.push(cancelBtn);
      }
      const evalBtn = h("button", { type: "button", id: "evaluate",
        disabled: evaluating || !(s.best_checkpoint_id || s.latest_checkpoint_id) }, "Evaluate against the baseline");
      evalBtn.addEventListener("click", doEvaluate);
      buttons.push(evalBtn);
      replace(actions, buttons);
    }

    async function doCancel() {
      acting = "cancelling";
      replace(actions, h("span", { class: "muted" }, "Cancelling… (waiting for the job's safe point)"));
      try {
        const r = await AC.call("training.cancel", { job_id: id, reason: "cancelled from the dashboard" });
        replace(actionMsg, h("p", { class: "ok", id: "cancel-result" }, "Job " + r.status + " after " + r.iterations_completed +
          " iterations" + (r.checkpoint_saved ? "; checkpoint " + r.checkpoint_id + " saved." : ".")));
      } catch (e) {
        replace(actionMsg, errorBox(e));
      }
      acting = null;
      if (status) renderActions(status);
      refresh(true).catch(showError);
    }

    async function doEvaluate() {
      if (evaluating) return;
      evaluating = true;
      if (status) renderActions(status);
      replace(evalBox, h("section", { class: "card" }, h("h2", {}, "Evaluation"),
        h("p", { class: "muted" }, "Evaluating the best checkpoint and the untrained baseline on the job's evaluation data…")));
      try {
        const r = await AC.call("training.evaluate", { job_id: id });
        renderEvaluation(r);
      } catch (e) {
        replace(evalBox, h("section", { class: "card" }, h("h2", {}, "Evaluation"), errorBox(e)));
      }
      evaluating = false;
      if (status) renderActions(status);
    }

    function renderEvaluation(r) {
      const t = r.metrics || {};
      const bc = r.baseline_comparison || {};
      const b = bc.baseline || {};
      const row = (name, bv, tv) => h("tr", {}, h("th", {}, name), h("td", { class: "num" }, bv), h("td", { class: "num" }, tv));
      replace(evalBox, h("section", { class: "card", id: "evaluation-result" },
        h("h2", {}, "Evaluation"),
        h("p", {}, "Checkpoint ", h("span", { class: "mono" }, r.checkpoint_id), " (iteration " + r.checkpoint_iteration +
          ", selected by " + r.selected_by + ") against the untrained baseline on " + r.queries_evaluated + " queries, in " +
          r.evaluation_duration_ms + " ms."),
        h("table", { class: "data compare" },
          h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Baseline (untrained)"), h("th", {}, "Trained"))),
          h("tbody", {},
            row("Success rate [95 % interval]", pct(b.success_rate) + " " + ci(b.success_rate_ci95), pct(t.success_rate) + " " + ci(t.success_rate_ci95)),
            row("Average reward", num(b.avg_reward), num(t.avg_reward)),
            row("Average steps", num(b.avg_steps, 2), num(t.avg_steps, 2)),
            row("Tool accuracy", num(b.tool_accuracy), num(t.tool_accuracy)))),
        h("p", { id: "eval-stats" }, "Improvement: success " + (bc.success_rate_improvement >= 0 ? "+" : "") +
          pct(bc.success_rate_improvement) + ", reward " + (bc.avg_reward_improvement >= 0 ? "+" : "") + num(bc.avg_reward_improvement) +
          ". McNemar p = " + pvalue(bc.p_value) + (bc.statistically_significant ? " (significant at 0.05)" : " (not significant at 0.05)") +
          "; reward sign-flip p = " + pvalue(bc.p_value_reward) + ".")));
    }

    // The first load shows everything; later ones, while the job runs, fetch what is new.
    let refreshing = false;
    async function refresh(force) {
      if (refreshing) return;
      refreshing = true;
      try {
        const s = await AC.call("training.get_status", { job_id: id });
        if (life.stopped) return;
        const changed = !status || force || s.status !== status.status || s.current_iteration !== status.current_iteration;
        if (s.current_iteration < nextIteration - 1) {
          // the job went back to a checkpoint (a restarted server resumes from there): the rows
          // after it are written again, so the series is read again from the start
          rows.length = 0;
          nextIteration = 0;
        }
        status = s;
        renderSummary(s);
        if (changed) {
          await Promise.all([loadMetrics(), loadEvents(),
            s.latest_checkpoint_id !== latestCkpt ? loadCheckpoints().then(() => { latestCkpt = s.latest_checkpoint_id; }) : null]);
        }
      } finally {
        refreshing = false;
      }
    }
    function fatal(e) {
      return e instanceof AC.RpcError && (e.code === -32001 || e.code === -32002 || e.code === -32003);
    }
    function showError(e) {
      if (life.stopped) return;
      if (e instanceof AC.RpcError && e.code === -32001)
        replace(summary, h("p", { class: "error", id: "job-missing" }, "No such job (or it is not yours)."));
      else replace(actionMsg, errorBox(e));
    }
    // while the job runs: poll (one call chain at a time; rate limits are waited out in AC.call)
    function schedule() {
      if (!life.stopped && !(status && FINAL.has(status.status))) life.later(tick, POLL_JOB_MS);
    }
    async function tick() {
      try {
        await refresh(false);
      } catch (e) {
        showError(e);
        if (fatal(e)) return;
      }
      schedule();
    }

    Promise.all([refresh(true), traj.load()])
      .then(() => { ready("job"); schedule(); })
      .catch((e) => { showError(e); ready("job"); if (!fatal(e)) schedule(); });
  }

  // ---- the trajectory browser -----------------------------------------------------------------

  function trajectoryBrowser(life, id) {
    const state = { offset: 0, size: 20, success: false, minReward: "" };
    const success = h("input", { type: "checkbox", id: "traj-success" });
    const minReward = h("input", { type: "number", id: "traj-min-reward", step: "any", placeholder: "any" });
    const size = h("select", { id: "traj-size" }, [10, 20, 50, 100].map((n) => h("option", { value: n, selected: n === state.size }, String(n))));
    const apply = h("button", { type: "button", id: "traj-apply" }, "Apply");
    const first = h("button", { type: "button", id: "traj-first" }, "« First");
    const prev = h("button", { type: "button", id: "traj-prev" }, "‹ Previous");
    const next = h("button", { type: "button", id: "traj-next" }, "Next ›");
    const last = h("button", { type: "button", id: "traj-last" }, "Last »");
    const info = h("span", { id: "traj-info", class: "muted" });
    const list = h("div", { id: "trajectories" });
    const el = h("section", { class: "card", id: "trajectory-browser" },
      h("h2", {}, "Trajectories"),
      h("div", { class: "row filters" }, h("label", {}, success, " successful only"),
        h("label", {}, "min reward ", minReward), h("label", {}, "per page ", size), apply),
      h("div", { class: "pager" }, first, prev, info, next, last), list);
    let total = 0;

    function stepsTable(steps) {
      return h("table", { class: "data steps" },
        h("thead", {}, h("tr", {}, ["#", "Tool", "Params", "Result", "ms"].map((t) => h("th", {}, t)))),
        h("tbody", {}, (steps || []).map((s, i) => h("tr", { class: "step" },
          h("td", { class: "num" }, String(i + 1)),
          h("td", { class: "tool" }, (s.action && s.action.tool) || "–"),
          h("td", { class: "json params" }, json(s.action && s.action.params)),
          h("td", { class: "json result" }, json(s.result)),
          h("td", { class: "num" }, s.duration_ms === undefined ? "–" : num(s.duration_ms, 1))))));
    }

    function card(t, index) {
      return h("article", { class: "traj " + (t.success ? "ok" : "bad"), dataset: { index: index, trajectoryId: t.trajectory_id } },
        h("div", { class: "row" },
          h("strong", {}, "#" + (index + 1)),
          h("span", {}, "iteration " + t.iteration),
          h("span", {}, "reward " + num(t.reward)),
          h("span", { class: "badge " + (t.success ? "best" : "status-failed") }, t.success ? "success" : "no success"),
          h("span", {}, ((t.steps && t.steps.length) || 0) + " steps"),
          t.truncated ? h("span", { class: "badge" }, "truncated") : null,
          t.cost_usd !== undefined ? h("span", { class: "muted" }, "$" + num(t.cost_usd, 4)) : null),
        h("p", { class: "query" }, h("span", { class: "muted" }, "query: "), h("span", { class: "query-text" }, String(t.query))),
        h("p", { class: "final" }, h("span", { class: "muted" }, "final: "), h("span", { class: "json" }, json(t.final))),
        t.error ? h("p", { class: "error" }, json(t.error)) : null,
        h("details", {}, h("summary", {}, "steps"), stepsTable(t.steps)));
    }

    async function load() {
      const params = { job_id: id, limit: state.size, offset: state.offset };
      if (state.success) params.success_only = true;
      if (state.minReward !== "" && Number.isFinite(Number(state.minReward))) params.min_reward = Number(state.minReward);
      info.textContent = "loading…";
      [first, prev, next, last, apply].forEach((b) => { b.disabled = true; });
      try {
        const r = await AC.call("training.export_trajectories", params);
        if (life.stopped) return;
        total = r.total_count;
        replace(list, r.trajectories.length ? r.trajectories.map((t, i) => card(t, state.offset + i)) :
          h("p", { class: "muted" }, "No trajectory matches."));
        const pages = Math.max(1, Math.ceil(total / state.size));
        const page = Math.floor(state.offset / state.size) + 1;
        info.textContent = "page " + page + " of " + pages + " · " + total + " trajectories";
        info.dataset.page = String(page);
        info.dataset.total = String(total);
        first.disabled = prev.disabled = state.offset === 0;
        next.disabled = last.disabled = !r.has_more;
      } catch (e) {
        if (life.stopped) return;
        info.textContent = "";
        replace(list, errorBox(e));
        first.disabled = prev.disabled = state.offset === 0;
        next.disabled = last.disabled = false;
      } finally {
        apply.disabled = false;
      }
    }

    const go = (offset) => {
      state.offset = Math.max(0, offset);
      load();
    };
    apply.addEventListener("click", () => {
      state.success = success.checked;
      state.minReward = minReward.value;
      state.size = Number(size.value);
      go(0);
    });
    first.addEventListener("click", () => go(0));
    prev.addEventListener("click", () => go(state.offset - state.size));
    next.addEventListener("click", () => go(state.offset + state.size));
    last.addEventListener("click", () => go(Math.max(0, (Math.ceil(total / state.size) - 1) * state.size)));
    return { el, load };
  }

  // ---- start form --------------------------------------------------------------------------------

  function startView(life) {
    const agent = h("input", { type: "text", id: "agent-id", value: "calculator", required: true });
    const training = h("input", { type: "file", id: "training-file", accept: ".json,application/json", required: true });
    const evaluation = h("input", { type: "file", id: "evaluation-file", accept: ".json,application/json" });
    const validation = h("input", { type: "file", id: "validation-file", accept: ".json,application/json" });
    const fields = h("div", { class: "fields", id: "config-fields" }, h("p", { class: "muted" }, "loading the configuration fields…"));
    const msg = h("div", { id: "start-result" });
    const submit = h("button", { type: "submit", id: "start-submit" }, "Start training");
    const form = h("form", { id: "start", class: "card" },
      h("h1", {}, "Start a GRPO job"),
      h("div", { class: "grid2" },
        h("label", { for: "agent-id" }, "Agent"), agent,
        h("label", { for: "training-file" }, "Training data"),
        h("div", {}, training, h("p", { class: "muted small" },
          "A JSON array of {query, expected_outcome}, or an object with training_data (and evaluation_data, validation_data).")),
        h("label", { for: "evaluation-file" }, "Evaluation data (optional)"), evaluation,
        h("label", { for: "validation-file" }, "Validation data (optional)"), validation),
      h("h2", {}, "Configuration"),
      h("p", { class: "muted small" }, "Defaults and ranges come from the server (rpc.discover). Only the fields you change are sent."),
      fields, h("div", { class: "row" }, submit), msg);
    replace(view, form);
    const inputs = new Map(); // name -> { input, schema, changed }

    discover().then((doc) => {
      const schema = doc.components && doc.components.schemas && doc.components.schemas.GRPOConfig;
      if (!schema) throw new Error("this server does not describe GRPOConfig");
      replace(fields, Object.entries(schema.properties).map(([name, p]) => {
        let input;
        if (p.type === "boolean") input = h("input", { type: "checkbox", checked: !!p.default });
        else if (p.enum) input = h("select", {}, p.enum.map((v) => h("option", { value: v, selected: v === p.default }, v)));
        else input = h("input", { type: "number", min: p.minimum, max: p.maximum, step: p.type === "integer" ? 1 : "any", value: p.default });
        input.name = name;
        input.id = "cfg-" + name;
        const entry = { input, schema: p, changed: false };
        input.addEventListener("change", () => { entry.changed = true; input.classList.remove("invalid"); });
        inputs.set(name, entry);
        const range = p.minimum !== undefined ? " · " + p.minimum + " to " + p.maximum : "";
        return h("div", { class: "field", dataset: { field: name } }, h("label", { for: input.id }, name), input,
          h("p", { class: "muted small" }, p.description + " (default " + String(p.default) + range + ")"));
      }));
      ready("start");
    }).catch((e) => {
      replace(fields, errorBox(e));
      ready("start");
    });

    async function readJson(input, what) {
      const file = input.files && input.files[0];
      if (!file) return undefined;
      const text = await file.text();
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error(what + " (" + file.name + ") is not JSON: " + e.message);
      }
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(msg);
      inputs.forEach((e) => e.input.classList.remove("invalid"));
      submit.disabled = true;
      try {
        const params = { agent_id: agent.value.trim(), config: {} };
        const t = await readJson(training, "the training data");
        if (Array.isArray(t)) params.training_data = t;
        else if (t && typeof t === "object") {
          for (const k of ["training_data", "evaluation_data", "validation_data"]) if (k in t) params[k] = t[k];
        } else throw new Error("pick a training data file");
        const e = await readJson(evaluation, "the evaluation data");
        if (e !== undefined) params.evaluation_data = Array.isArray(e) ? e : e.evaluation_data;
        const v = await readJson(validation, "the validation data");
        if (v !== undefined) params.validation_data = Array.isArray(v) ? v : v.validation_data;
        for (const [name, entry] of inputs) {
          if (!entry.changed) continue;
          const inp = entry.input;
          if (inp.type === "checkbox") params.config[name] = inp.checked;
          else if (inp.tagName === "SELECT") params.config[name] = inp.value;
          else if (inp.value !== "") params.config[name] = Number(inp.value);
        }
        const r = await AC.call("training.start_grpo", params);
        location.hash = "#/job/" + encodeURIComponent(r.job_id);
      } catch (e) {
        if (life.stopped) return;
        const field = e instanceof AC.RpcError && e.data && e.data.field;
        if (field && inputs.has(field)) inputs.get(field).input.classList.add("invalid");
        const problems = e instanceof AC.RpcError && e.data && Array.isArray(e.data.problems) ? e.data.problems : [];
        replace(msg, errorBox(e), problems.length ? h("ul", { class: "problems" }, problems.slice(0, 20).map((p) =>
          h("li", {}, [p.index !== undefined ? "#" + p.index : null, p.field, p.error].filter((x) => x !== null && x !== undefined).join(" · ")))) : null);
        submit.disabled = false;
      }
    });
  }

  window.addEventListener("hashchange", route);
  route();
})();
