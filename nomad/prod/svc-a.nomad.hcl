# Rendered by `invoke render` from service.toml, foundation/foundation.toml and
# deploy/environments/prod.toml. Do not edit: change the source and render again.

variable "image_tag" {
  description = "the tag of caravan/svc-a to run"
  type        = string
  default     = "0.1.0"
}

variable "count" {
  description = "instances at deploy time (1..3; the autoscaler moves it)"
  type        = number
  default     = 2
}

variable "revision" {
  description = "the git revision deployed (`invoke deploy` sets it)"
  type        = string
  default     = "unset"
}

job "svc-a" {
  datacenters = ["dc1", "dc2"]
  type        = "service"

  meta {
    version  = "0.1.0"
    revision = var.revision
  }

  ui {
    description = "Caravan Catalog (svc-a 0.1.0): rendered from svc-a's declaration"

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

  group "svc-a" {
    count = var.count

    network {
      mode = "bridge"
    }

    service {
      name        = "svc-a"
      port        = "8000"
      provider    = "consul"
      tags        = ["caravan", "version-0.1.0"]
      canary_tags = ["canary"]

      meta {
        version      = "0.1.0"
        metrics_path = "/metrics"
      }

      check {
        name     = "svc-a ready"
        type     = "http"
        path     = "/health/ready"
        interval = "5s"
        timeout  = "2s"
        expose   = true
      }

      check {
        name     = "svc-a live"
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
      max     = 3

      policy {
        evaluation_interval = "15s"
        cooldown            = "300s"

        check "cpu" {
          source = "prometheus"
          query  = "avg(nomad_client_allocs_cpu_total_percent{exported_job=\"svc-a\",task=\"svc-a\"})"

          strategy "target-value" {
            target = 70
          }
        }
      }
    }

    task "svc-a" {
      driver         = "docker"
      kill_timeout   = "30s"
      kill_signal    = "SIGTERM"
      shutdown_delay = "5s"

      config {
        image           = "caravan/svc-a:${var.image_tag}"
        readonly_rootfs = true
        cap_drop        = ["ALL"]
      }

      env {
        CARAVAN_ACCESS_LOG         = "true"
        CARAVAN_ALLOWED_CALLERS    = "{\"gateway\": [\"/products\", \"/stock\", \"GET,HEAD /reservations\"], \"monitoring\": [\"/metrics\"], \"svc-b\": null}"
        CARAVAN_DISCOVERY_BACKEND  = "static"
        CARAVAN_HOST               = "0.0.0.0"
        CARAVAN_IDENTITY_KEY_FILE  = "/secrets/identity.key"
        CARAVAN_IDENTITY_NAME      = "svc-a"
        CARAVAN_PORT               = "8000"
        CARAVAN_PUBLIC_KEYS_FILE   = "/secrets/public-keys.json"
        CARAVAN_SECRET_KEY_FILE    = "/secrets/secret.key"
        CARAVAN_SERVICE_NAME       = "svc-a"
        CARAVAN_SHUTDOWN_TIMEOUT_S = "20"
        PYTHONUNBUFFERED           = "1"
      }

      resources {
        cpu    = 500
        memory = 512
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/svc-a\" }}{{ .identity_key }}{{ end }}"
        destination = "secrets/identity.key"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/svc-a\" }}{{ .public_keys }}{{ end }}"
        destination = "secrets/public-keys.json"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/svc-a\" }}{{ .secret_key }}{{ end }}"
        destination = "secrets/secret.key"
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }

      template {
        data        = "CARAVAN_DATABASE_URL={{ with nomadVar \"nomad/jobs/svc-a\" }}{{ .database_url }}{{ end }}"
        destination = "secrets/database.env"
        env         = true
        perms       = "0400"
        uid         = 10001
        gid         = 10001
        change_mode = "restart"
      }
    }
  }
}
