(import 'node.libsonnet')
