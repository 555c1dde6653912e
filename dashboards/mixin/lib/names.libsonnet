// Names for what the exporter labels by network namespace or address (--netns.all): a `workload`
// label that reads `namespace/pod` where the exporter found the pod behind it
// (conntrack_netns_info, conntrack_address_info), else the netns label (namespaces outside
// Kubernetes, the node's own), and is absent in the default mode, whose series have no netns.
//
// The pod's series are selected by `uid!=""`, not `pod!=""`: uid is never a target label, while
// Prometheus Operator adds the exporter's own pod and namespace to every series it scrapes. Scraped
// without honor_labels (the netns-all overlay sets honorLabels), the exporter's own pod and
// namespace labels arrive renamed exported_pod and exported_namespace: those win where present.
{
  // `info` (a selector of conntrack_netns_info or conntrack_address_info) with `workload`.
  local named(info, sel) =
    |||
      label_join(%(info)s{%(sel)s,uid!="",exported_pod!=""}, "workload", "/", "exported_namespace", "exported_pod")
      or
      label_join(%(info)s{%(sel)s,uid!="",exported_pod=""}, "workload", "/", "namespace", "pod")
      or
      label_replace(%(info)s{%(sel)s,uid=""}, "workload", "$1", "netns", "(.*)")
    ||| % { info: info, sel: sel },

  // conntrack_netns_info with `workload`, one per (instance, netns).
  local netnsNames(sel) = named('conntrack_netns_info', sel),

  // `expr` (series with instance and netns) with `workload`; series without a name as they are.
  byNetns(expr, sel)::
    |||
      (%(expr)s) * on (instance, netns) group_left (workload) (%(names)s)
      or on (instance, netns)
      (%(expr)s)
    ||| % { expr: expr, names: netnsNames(sel) },

  // `expr` (series with an address in `label`: source or destination, any instance) with
  // `workload`: the pod or namespace holding that address, for addresses in the top K.
  byAddress(expr, label, sel)::
    |||
      (%(expr)s) * on (%(label)s) group_left (workload) topk by (%(label)s) (1, label_replace(
        %(names)s,
        "%(label)s", "$1", "address", "(.*)"))
      or on (%(label)s)
      (%(expr)s)
    ||| % { expr: expr, label: label, names: named('conntrack_address_info', sel) },
}
