// The few Grafana JSON-model pieces our dashboards are made of, written once: a panel from a short
// description, a query target, a template variable, a Prometheus annotation, and the layout of
// rows. Plain Jsonnet, no grafonnet: see dashboards/README.md for why.
{
  // Every panel, target, variable and annotation asks the data source the user picks.
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  target(expr, legend):: { expr: expr, legend: legend },

  // What every dashboard of the mixin shares.
  base:: {
    // 42: the last schema version of Grafana's v1 dashboard API (Grafana 12); later Grafana
    // versions read it as it is.
    schemaVersion: 42,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: '',
  },

  // A dashboard link to another dashboard of the mixin, keeping the time range and the variables
  // they share (data source, job).
  dashboardLink(dashboard, tooltip):: {
    title: dashboard.title,
    tooltip: tooltip,
    type: 'link',
    icon: 'dashboard',
    url: '/d/%s' % dashboard.uid,
    targetBlank: false,
    asDropdown: false,
    includeVars: true,
    keepTime: true,
    tags: [],
  },

  runbooksLink(c):: {
    title: 'Runbooks',
    tooltip: 'What each conntrack alert means, how to diagnose and mitigate it',
    type: 'link',
    icon: 'doc',
    url: c.runbookIndexURL,
    targetBlank: true,
    asDropdown: false,
    includeVars: false,
    keepTime: false,
    tags: [],
  },

  // Colours of a fill ratio: the fill alerts' thresholds.
  fillThresholds(c):: [
    { color: 'green', value: null },
    { color: 'orange', value: c.fillWarningRatio },
    { color: 'red', value: c.fillCriticalRatio },
  ],

  // A panel from its description (fields below); id and position come from layout().
  //   title, description, type ('timeseries' | 'gauge' | 'stat' | 'bargauge'), unit, w, targets
  //   h (default 8), stack, min, max, thresholds ([{ color, value }]),
  //   limitSeries: a series drawn as a dashed red line (the limit),
  //   runbooks: alerts whose runbooks the panel links to, at runbookURLPattern
  //   (_config.runbookURLPattern),
  //   dataLinks: links on each series ([{ title, url }], url with ${__field.labels.x}),
  //   instant: query the last value only (a ranking, not a history).
  panel(p, id, x, y, runbookURLPattern)::
    local has(f) = std.objectHas(p, f);
    local stack = has('stack') && p.stack;
    local defaults =
      { unit: p.unit }
      + (if has('min') then { min: p.min } else {})
      + (if has('max') then { max: p.max } else {})
      + (if has('thresholds') then { thresholds: { mode: 'absolute', steps: p.thresholds } } else {})
      + (if has('dataLinks') then { links: p.dataLinks } else {})
      + (if p.type == 'timeseries' then {
           custom: {
             drawStyle: 'line',
             lineWidth: 1,
             fillOpacity: if stack then 60 else 10,
             stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
           },
         } else {});
    local overrides = if has('limitSeries') then [
      {
        matcher: { id: 'byRegexp', options: '.* %s$' % p.limitSeries },
        properties: [
          { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
          { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
          { id: 'custom.fillOpacity', value: 0 },
        ],
      },
    ] else [];
    local links = [
      { title: 'Runbook: %s' % alert, url: runbookURLPattern % alert, targetBlank: true }
      for alert in (if has('runbooks') then p.runbooks else [])
    ];
    {
      id: id,
      type: p.type,
      title: p.title,
      description: p.description,
      datasource: $.datasource,
      gridPos: { x: x, y: y, w: p.w, h: $.height(p) },
      fieldConfig: { defaults: defaults, overrides: overrides },
      options: if p.type == 'timeseries' then {
        legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi' },
      } else {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      } + (if p.type == 'bargauge' then {
             orientation: 'horizontal',
             displayMode: 'gradient',
             showUnfilled: true,
           } else {}),
      targets: [
        {
          refId: std.char(65 + i),
          datasource: $.datasource,
          expr: p.targets[i].expr,
          legendFormat: p.targets[i].legend,
        } + (if has('instant') && p.instant then { instant: true, range: false } else { range: true })
        for i in std.range(0, std.length(p.targets) - 1)
      ],
    } + (if std.length(links) > 0 then { links: links } else {}),

  height(p):: if std.objectHas(p, 'h') then p.h else 8,

  // Rows of panels, left to right, wrapping at Grafana's 24 columns. A collapsed row holds its
  // panels; an open one is followed by them. Ids count up from 1 in that order.
  layout(rows, runbookURLPattern)::
    local addRow(acc, row) =
      local collapsed = std.objectHas(row, 'collapsed') && row.collapsed;
      local top = acc.y + 1;
      local place(s, p) =
        local wrap = s.x + p.w > 24;
        local x = if wrap then 0 else s.x;
        local y = if wrap then s.y + s.rowHeight else s.y;
        {
          x: x + p.w,
          y: y,
          rowHeight: std.max(if wrap then 0 else s.rowHeight, $.height(p)),
          id: s.id + 1,
          out: s.out + [$.panel(p, s.id, x, y, runbookURLPattern)],
        };
      local placed = std.foldl(place, row.panels, { x: 0, y: top, rowHeight: 0, id: acc.id + 1, out: [] });
      {
        id: placed.id,
        y: if collapsed then top else placed.y + placed.rowHeight,
        panels: acc.panels + [{
          id: acc.id,
          type: 'row',
          title: row.title,
          collapsed: collapsed,
          gridPos: { x: 0, y: acc.y, w: 24, h: 1 },
          panels: if collapsed then placed.out else [],
        }] + (if collapsed then [] else placed.out),
      };
    std.foldl(addRow, rows, { id: 1, y: 0, panels: [] }).panels,

  // A query variable over label values, all selected by default.
  variable(name, label, query):: {
    name: name,
    label: label,
    type: 'query',
    datasource: $.datasource,
    query: { query: query, refId: '%s-var' % name },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    current: { text: 'All', value: '$__all' },
    sort: 1,
  },

  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
  },

  // An annotation from a Prometheus query: one event (a region while it lasts) wherever the query
  // returns a sample. The flat form (expr, titleFormat, ...) is what Grafana's Prometheus data
  // source reads and what grafonnet writes.
  annotation(name, color, enable, expr, title, tagKeys):: {
    name: name,
    datasource: $.datasource,
    enable: enable,
    hide: false,
    iconColor: color,
    expr: expr,
    titleFormat: title,
    textFormat: '{{instance}}',
    tagKeys: tagKeys,
    useValueForTime: false,
  },
}
