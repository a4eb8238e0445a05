"""Setting eksight up for your clusters: `eksight generate` (write a valid config, show the plan) and
`eksight check` (are the clusters, log groups, stacks and permissions ready?).

`eksight.tools.setup.answers` holds the answer → config mapping shared with the web wizard.
"""
