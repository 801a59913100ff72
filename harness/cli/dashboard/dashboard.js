/* dashboard.js — draws the cnnbench history (window.CNB_DASHBOARD, from data.js) with Chart.js,
 * then writes a machine-readable summary of every chart into <pre id="cnb-summary"> so a headless
 * browser's --dump-dom shows what rendered (tests/test_dashboard.c). Written by
 * `cnnbench dashboard`; carried inside the program (cmake/embed_assets.cmake). */
(function () {
  'use strict';
  var D = window.CNB_DASHBOARD;
  var COLORS = {naive: '#7f7f7f', blas: '#1f77b4', onednn: '#2ca02c', cuda: '#ff7f0e',
                cudnn: '#9467bd'};
  var EXTRA = ['#d62728', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
  var runs = {}, charts = [], currentModel = '';
  D.runs.forEach(function (r, i) { r.order = i; runs[r.id] = r; });
  var regs = {};
  D.regressions.forEach(function (g) {
    regs[[g.run, g.model, g.backend, g.metric].join('|')] = g;
  });
  Chart.defaults.animation = false;

  function color(backend) {
    if (COLORS[backend]) return COLORS[backend];
    var h = 0;
    for (var i = 0; i < backend.length; i++) h = (h * 31 + backend.charCodeAt(i)) >>> 0;
    return EXTRA[h % EXTRA.length];
  }
  function isGpu(backend) { return /^cu/.test(backend); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function runLabel(id) {
    var r = runs[id];
    return [(r.commit || 'unknown').slice(0, 12), (r.created || '').replace('T', ' ').slice(5, 16)];
  }
  function runPage(id) { return 'runs/run-' + id + '.html'; }

  /* One line chart: x = the runs that have a point (time order), one series per seriesOf(p). */
  function lineChart(box, id, title, pts, seriesOf, scale) {
    if (!pts.length) return;
    var ids = [];
    pts.forEach(function (p) { if (ids.indexOf(p.run) < 0) ids.push(p.run); });
    ids.sort(function (a, b) { return runs[a].order - runs[b].order; });
    var series = {}, names = [];
    pts.forEach(function (p) {
      var name = seriesOf(p);
      if (!series[name]) {
        names.push(name);
        series[name] = {label: name, backend: p.backend, kind: runs[p.run].kind,
                        data: ids.map(function () { return null; }), runIds: ids.slice(),
                        marks: ids.map(function () { return null; })};
      }
      var s = series[name], i = ids.indexOf(p.run);
      s.data[i] = p.value * (scale || 1);
      s.marks[i] = regs[[p.run, p.model, p.backend, p.metric].join('|')] || null;
    });
    var datasets = names.sort().map(function (n) {
      var s = series[n], c = color(s.backend) + (/· infer/.test(n) ? '99' : '');
      return {label: n, data: s.data, runIds: s.runIds, marks: s.marks, spanGaps: true,
              borderColor: c, backgroundColor: c, borderDash: s.kind === 'bench' ? [6, 3] : [],
              pointStyle: s.marks.map(function (m) { return m ? 'triangle' : 'circle'; }),
              pointRadius: s.marks.map(function (m) { return m ? 8 : 3; }),
              pointBackgroundColor: s.marks.map(function (m) { return m ? '#d62728' : c; })};
    });
    draw(box, id, title, 'line', {labels: ids.map(runLabel), datasets: datasets}, true);
  }

  function draw(box, id, title, type, data, linked) {
    var wrap = el('div', {'class': 'chart'});
    wrap.appendChild(el('h3', {}, title));
    var holder = el('div', {'class': 'canvas'});
    var canvas = el('canvas', {id: id});
    holder.appendChild(canvas);
    wrap.appendChild(holder);
    box.appendChild(wrap);
    var chart = new Chart(canvas, {type: type, data: data, options: {
      responsive: true, maintainAspectRatio: false,
      plugins: {legend: {position: 'bottom',
                         labels: type === 'line' ? {boxWidth: 24, boxHeight: 2} : {}}, tooltip: {callbacks: {footer: function (items) {
        if (!linked || !items.length) return '';
        var ds = items[0].dataset, m = ds.marks[items[0].dataIndex];
        return 'run ' + ds.runIds[items[0].dataIndex] + ' (click for details)' +
               (m ? '\nREGRESSION ' + m.change_pct.toFixed(1) + '% vs run ' + m.base_run : '');
      }}}},
      onClick: function (evt, elements) {
        if (!linked || !elements.length) return;
        var e = elements[0];
        window.location.href = runPage(data.datasets[e.datasetIndex].runIds[e.index]);
      }}});
    charts.push({id: id, model: currentModel, title: title, chart: chart, linked: linked});
  }

  function breakdownChart(box, id, bd) {
    var backends = Object.keys(bd.backends).sort(), families = [];
    backends.forEach(function (b) {
      Object.keys(bd.backends[b]).forEach(function (f) { if (families.indexOf(f) < 0) families.push(f); });
    });
    var datasets = backends.map(function (b) {
      return {label: b, backgroundColor: color(b), runIds: families.map(function () { return bd.run; }),
              data: families.map(function (f) { return bd.backends[b][f] || 0; })};
    });
    draw(box, id, 'per-kernel time of one training step, ms (latest bench: run ' + bd.run + ')',
         'bar', {labels: families, datasets: datasets}, false);
  }

  function modelSection(model, n) {
    currentModel = model;
    var sec = el('section', {'class': 'model'});
    sec.appendChild(el('h2', {}, model));
    var box = el('div', {'class': 'grid'});
    sec.appendChild(box);
    document.getElementById('models').appendChild(sec);
    var mine = D.points.filter(function (p) { return p.model === model; });
    var batches = {};
    mine.forEach(function (p) { batches[p.batch] = 1; });
    var many = Object.keys(batches).length > 1;
    function pick(test) { return mine.filter(function (p) { return test(p.metric, p.backend); }); }
    function byBackend(p) {
      return p.backend + ' · ' + runs[p.run].kind + (many ? ' · batch ' + p.batch : '');
    }
    function byPass(p) {
      return p.backend + (p.baseline && p.baseline !== 'naive' ? ':' + p.baseline : '') + ' · ' +
             (/_infer$/.test(p.metric) ? 'infer' : 'train') + (many ? ' · batch ' + p.batch : '');
    }
    var id = 'm' + n + '-';
    lineChart(box, id + 'train', 'training images/s', pick(function (m) {
      return m === 'train_images_per_s'; }), byBackend);
    lineChart(box, id + 'infer', 'inference images/s', pick(function (m) {
      return m === 'infer_images_per_s'; }), byBackend);
    lineChart(box, id + 'speedup', 'speed-up over naive, measured within one run',
              pick(function (m) { return /^speedup_vs_naive/.test(m); }), byPass);
    lineChart(box, id + 'cpugpu', 'GPU over the best CPU backend within one run (CPU:GPU = 1:x)',
              pick(function (m, b) { return /^vs_best_cpu/.test(m) && isGpu(b); }), byPass);
    lineChart(box, id + 'accuracy', 'test accuracy, %', pick(function (m) {
      return m === 'test_accuracy'; }), byBackend, 100);
    if (D.breakdowns[model]) breakdownChart(box, id + 'kernels', D.breakdowns[model]);
  }

  function regressionTable() {
    var box = document.getElementById('regressions');
    if (!D.regressions.length) {
      box.appendChild(el('p', {}, 'none found'));
      return;
    }
    var t = el('table');
    var head = el('tr');
    ['run', 'against run', 'model', 'backend', 'figure', 'change'].forEach(function (h) {
      head.appendChild(el('th', {}, h));
    });
    t.appendChild(head);
    D.regressions.forEach(function (g) {
      var tr = el('tr');
      [g.run, g.base_run].forEach(function (r) {
        var td = el('td');
        td.appendChild(el('a', {href: runPage(r)}, String(r)));
        tr.appendChild(td);
      });
      [g.model, g.backend, g.metric, g.change_pct.toFixed(1) + '%'].forEach(function (v) {
        tr.appendChild(el('td', {}, v));
      });
      t.appendChild(tr);
    });
    box.appendChild(t);
  }

  function summary() {
    var out = {charts: charts.map(function (c) {
      var ds = c.chart.data.datasets;
      return {id: c.id, model: c.model, title: c.title, type: c.chart.config.type, linked: c.linked,
              labels: c.chart.data.labels.length, series: ds.length,
              series_labels: ds.map(function (d) { return d.label; }),
              points: ds.map(function (d) {
                return d.data.filter(function (v) { return v !== null; }).length; }),
              /* points Chart.js laid out on the canvas (a gap's element is skipped) */
              rendered: ds.map(function (d, i) {
                return c.chart.getDatasetMeta(i).data.filter(function (e) {
                  return !e.skip && isFinite(e.x) && isFinite(e.y); }).length; }),
              marked: ds.reduce(function (n, d) {
                return n + (d.marks || []).filter(function (m) { return m; }).length; }, 0),
              runs: ds.reduce(function (a, d) {
                d.runIds.forEach(function (r, i) {
                  if (d.data[i] !== null && a.indexOf(r) < 0) a.push(r); });
                return a; }, [])};
    }), runs: D.runs.length, regressions: D.regressions.length, errors: window.CNB_ERRORS || []};
    var pre = el('pre', {id: 'cnb-summary', 'class': 'summary'});
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
    document.title += ' (rendered)';
  }

  var machines = {};
  D.runs.forEach(function (r) { machines[r.machine] = 1; });
  document.getElementById('meta').textContent = D.runs.length + ' runs from ' +
    Object.keys(machines).join('; ') + '. Each point links to its run; red triangles mark what ' +
    '`cnnbench compare --gate both --threshold ' + D.threshold_pct + '` calls a regression ' +
    'against the previous run of the same kind, machine and cells. Dashed lines: bench runs.';
  /* the model with the most runs first: the page opens on the richest history */
  var runsOf = {};
  D.points.forEach(function (p) {
    if (!p.model) return;
    runsOf[p.model] = runsOf[p.model] || {};
    runsOf[p.model][p.run] = 1;
  });
  Object.keys(runsOf).sort(function (a, b) {
    return Object.keys(runsOf[b]).length - Object.keys(runsOf[a]).length || (a < b ? -1 : 1);
  }).forEach(modelSection);
  regressionTable();
  summary();
})();
