// How thresholds and durations from _config read in PromQL and in text.
{
  // '%g', not '%s': C++ jsonnet's std.toString writes 0.8 as 0.80000000000000004.
  ratio(r):: '%g' % r,
  percent(r):: '%g%%' % (r * 100),

  local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' },
  local parse(d) =
    local n = std.length(d);
    local unit = std.substr(d, n - 1, 1);
    assert n >= 2 && std.objectHas(units, unit) : 'a duration of one unit (30s, 5m, 1h, 1d) expected, not "%s"' % d;
    { count: std.parseInt(std.substr(d, 0, n - 1)), unit: units[unit] },

  // '5m' -> '5 minutes', '1h' -> '1 hour'.
  duration(d)::
    local p = parse(d);
    '%d %s%s' % [p.count, p.unit, if p.count == 1 then '' else 's'],
  // 'the last ' + period('1h') -> 'the last hour'; period('5m') -> '5 minutes'.
  period(d)::
    local p = parse(d);
    if p.count == 1 then p.unit else self.duration(d),
}
