# Rendered by `invoke render` from service.toml, foundation/foundation.toml and
# deploy/environments/dev.toml. Do not edit: change the source and render again.

variable "image_tag" {
  description = "the tag of caravan/gateway to run"
  type        = string
  default     = "0.1.0"
}

variable "count" {
  description = "instances at deploy time (1..4; the autoscaler moves it)"
  type        = number
  default     = 1
}

variable "revision" {
  description = "the git revision deployed (`invoke deploy` sets it)"
  type        = string
  default     = "unset"
}

job "gateway" {
  datacenters = ["dc1"]
  type        = "service"

  meta {
    version  = "0.1.0"
    revision = var.revision
  }

  ui {
    description = "Caravan API gateway (gateway 0.1.0): rendered from gateway's declaration"

    link {
      label = "Runbook"
      url   = "https://docs.caravan.example/runbooks"
    }

    link {
      label = "Deployment docs"
      url   = "https://docs.caravan.example/deploy"
    }
  }

  update {
    max_parallel      = 1
    canary            = 1
    auto_promote      = true
    auto_revert       = true
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
  }

  group "gateway" {
    count = var.count

    network {
      mode = "bridge"

      port "http" {
        to = 8000
      }
    }

    service {
      name        = "gateway"
      port        = "http"
      provider    = "consul"
      tags        = ["caravan", "version-0.1.0"]
      canary_tags = ["canary"]

      meta {
        version      = "0.1.0"
        metrics_path = "/metrics"
      }

      check {
        name     = "gateway ready"
        type     = "http"
        path     = "/health/ready"
        interval = "5s"
        timeout  = "2s"
        expose   = true
      }

      check {
        name     = "gateway live"
        type     = "http"
        path     = "/health/live"
        interval = "5s"
        timeout  = "2s"
        expose   = true

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "svc-a"
              local_bind_port  = 9101
            }

            upstreams {
              destination_name = "svc-b"
              local_bind_port  = 9102
            }

            upstreams {
              destination_name = "svc-c"
              local_bind_port  = 9103
            }
          }
        }

        sidecar_task {
          resources {
            cpu    = 50
            memory = 64
          }
        }
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "10m"
      unlimited      = true
    }

    scaling {
      enabled = true
      min     = 1
      max     = 4

      policy {
        evaluation_interval = "15s"
        cooldown            = "60s"

        check "cpu" {
          source = "prometheus"
          query  = "avg(nomad_client_allocs_cpu_total_percent{exported_job=\"gateway\",task=\"gateway\"})"

          strategy "target-value" {
            target = 70
          }
        }
      }
    }

    task "gateway" {
      driver         = "docker"
      kill_timeout   = "30s"
      kill_signal    = "SIGTERM"
      shutdown_delay = "5s"

      config {
        image           = "caravan/gateway:${var.image_tag}"
        readonly_rootfs = true
        cap_drop        = ["ALL"]
        ports           = ["http"]
      }

      env {
        CARAVAN_ACCESS_LOG         = "true"
        CARAVAN_ALLOWED_CALLERS    = "{\"client\": null, \"monitoring\": [\"/metrics\"]}"
        CARAVAN_API_KEYS_FILE      = "/secrets/api-keys.json"
        CARAVAN_DISCOVERY_BACKEND  = "static"
        CARAVAN_GATEWAY_POLICY     = "{\"svc-a\": [\"/products\", \"/stock\", \"GET,HEAD /reservations\"], \"svc-b\": null, \"svc-c\": [\"GET,HEAD /payments\", \"GET,HEAD /ledger\"]}"
        CARAVAN_GATEWAY_ROUTES     = "{\"/api/svc-a\": \"svc-a\", \"/api/svc-b\": \"svc-b\", \"/api/svc-c\": \"svc-c\"}"
        CARAVAN_HOST               = "0.0.0.0"
        CARAVAN_IDENTITY_KEY_FILE  = "/secrets/identity.key"
        CARAVAN_IDENTITY_NAME      = "gateway"
        CARAVAN_PORT               = "8000"
        CARAVAN_PUBLIC_KEYS_FILE   = "/secrets/public-keys.json"
        CARAVAN_SERVICE_NAME       = "gateway"
        CARAVAN_SHUTDOWN_TIMEOUT_S = "20"
        CARAVAN_UPSTREAM_SVC_A     = "http://127.0.0.1:9101"
        CARAVAN_UPSTREAM_SVC_B     = "http://127.0.0.1:9102"
        CARAVAN_UPSTREAM_SVC_C     = "http://127.0.0.1:9103"
        PYTHONUNBUFFERED           = "1"
      }

      resources {
        cpu    = 250
        memory = 256
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/gateway\" }}{{ .identity_key }}{{ end }}"
        destination = "secrets/identity.key"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/gateway\" }}{{ .public_keys }}{{ end }}"
        destination = "secrets/public-keys.json"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/gateway\" }}{{ .api_keys }}{{ end }}"
        destination = "secrets/api-keys.json"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }
    }
  }
}
