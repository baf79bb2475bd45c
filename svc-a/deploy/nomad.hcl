# PLACEHOLDER — TO BE FILLED BY THE DEPLOYMENT STAGE (stage 14).
# The Nomad job for svc-a is derived from service.toml (name, routes, health paths, scaling
# min/max) and lives in nomad/svc-a.nomad.hcl once rendered. Nothing reads this file.
