terraform {
  # 1.10+ for S3-native state locking (`use_lockfile` in environments/*.s3.tfbackend).
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: `terraform init -backend-config=environments/<env>.s3.tfbackend`.
  backend "s3" {}
}
