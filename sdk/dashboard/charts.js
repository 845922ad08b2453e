// Learning curves with Chart.js (Debian's libjs-chart.js, loaded from /ui/vendor/chart.min.js):
// one line chart per metric, x = iteration, one point per training.get_metrics row that has the
// value. Without the library (libjs-chart.js not installed) each chart says so and the numbers
// stay readable in the table under it.
"use strict";

(function () {
  const { h } = window.DOM;

  // The curves of the job page: title, series (the metrics row key and its label) and a fixed
  // y range for rates.
  const CURVES = [
    { id: "reward", title: "Reward (mean per iteration)", series: [{ key: "avg_reward", label: "training reward" }] },
    {
      id: "success", title: "Success rate", min: 0, max: 1,
      series: [
        { key: "success_rate", label: "training" },
        { key: "validation_accuracy", label: "validation (greedy)", sparse: true },
      ],
    },
    { id: "kl", title: "KL to the reference policy", series: [{ key: "kl", label: "KL (k3)" }] },
    { id: "entropy", title: "Entropy", series: [{ key: "entropy", label: "entropy" }] },
    { id: "clip", title: "Clip fraction", min: 0, series: [{ key: "clip_fraction", label: "clip fraction" }] },
    { id: "loss", title: "Loss", series: [{ key: "train_loss", label: "loss" }] },
  ];
  const COLORS = ["#1f6fb4", "#d6532a", "#2ca02c", "#9467bd"];

  function available() {
    return typeof window.Chart === "function";
  }

  function points(rows, key) {
    const out = [];
    for (const r of rows) {
      const v = r[key];
      if (typeof v === "number" && Number.isFinite(v) && typeof r.iteration === "number") out.push({ x: r.iteration, y: v });
    }
    return out;
  }

  // A panel per curve: { el, update(rows) }.
  function panel(def) {
    const canvas = h("canvas", { class: "curve", dataset: { curve: def.id }, "aria-label": def.title, role: "img" });
    const note = h("p", { class: "muted small" });
    const el = h("figure", { class: "chart", dataset: { curve: def.id } },
      h("figcaption", {}, def.title), h("div", { class: "canvas-box" }, canvas), note);
    let chart = null;
    if (available()) {
      chart = new window.Chart(canvas, {
        type: "line",
        data: {
          datasets: def.series.map((s, i) => ({
            label: s.label,
            data: [],
            borderColor: COLORS[i % COLORS.length],
            backgroundColor: COLORS[i % COLORS.length],
            borderWidth: 1.5,
            pointRadius: s.sparse ? 2.5 : 0,
            pointHitRadius: 6,
            tension: 0,
            spanGaps: true,
          })),
        },
        options: {
          animation: false,
          parsing: false,
          normalized: true,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: { type: "linear", title: { display: true, text: "iteration" }, ticks: { precision: 0 } },
            y: { min: def.min, max: def.max },
          },
          plugins: { legend: { display: def.series.length > 1 }, decimation: { enabled: false } },
        },
      });
    } else {
      note.textContent = "Charts need Debian's libjs-chart.js on the server (apt-get install libjs-chart.js).";
    }
    return {
      el: el,
      update(rows) {
        const counts = def.series.map((s, i) => {
          const pts = points(rows, s.key);
          if (chart) chart.data.datasets[i].data = pts;
          return pts.length;
        });
        if (chart) chart.update("none");
        canvas.dataset.points = counts.join(",");
        if (counts.every((n) => n === 0)) note.textContent = "no data yet";
        else if (chart) note.textContent = "";
      },
      destroy() {
        if (chart) chart.destroy();
      },
    };
  }

  window.Charts = { CURVES, panel, available };
})();
