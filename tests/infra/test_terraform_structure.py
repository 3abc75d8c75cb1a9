"""What the AWS deployment promises, read from the parsed Terraform (issue 8).

Encryption everywhere, nothing public but the load balancer, every service autoscaled, every
credential from Secrets Manager, least-privilege roles, and staging/prod differing only in values.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.terraform_config import Block, Configuration, attr, blocks, references, text

SERVICES = {"api", "portal", "factory", "curator"}
SECRET_ENV_NAMES = {
    "DATABASE_URL",
    "REDIS_URL",
    "LESSONLOOP_QUEUE_REDIS_URL",
    "LESSONLOOP_TOKEN_SECRET",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
}
SECRET_LOOKING = re.compile(
    r"\b[A-Z0-9_]*(?:API_KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL)[A-Z0-9_]*\b"
)
ENV_NAME = re.compile(r"\b([A-Z][A-Z0-9_]{2,})\b['\"]?\s*[:=]")
PUBLIC_CIDRS = {"0.0.0.0/0", "::/0"}


def _one(found: list[Block], what: str) -> Block:
    assert len(found) == 1, f"expected exactly one {what}, found {[b.address for b in found]}"
    return found[0]


def _services(tf: Configuration) -> dict[str, Block]:
    return tf.module_calls(source="./modules/service")


def _secret_names(tf: Configuration, call: Block) -> set[str]:
    """Variables a service call injects from secrets; `var.llm_api_keys` stands for the names its
    validation allows (OPENAI_API_KEY, ANTHROPIC_API_KEY)."""
    secrets = attr(call.body, "secrets")
    names = _env_names(secrets)
    if references(secrets, r"var\.llm_api_keys"):
        validation = blocks(tf.variables()["llm_api_keys"].body, "validation")
        names |= set(re.findall(r"\b[A-Z][A-Z0-9_]+_API_KEY\b", text(validation)))
    return names


def _env_names(value: Any) -> set[str]:
    """Variable names set by a literal map or a merge(...) expression of maps."""
    if isinstance(value, dict):
        return set(value)
    return set(ENV_NAME.findall(text(value)))


def _values_named(node: Any, key: str) -> list[Any]:
    """Every value of an attribute or object key called `key`, at any depth."""
    if isinstance(node, dict):
        found = [value for name, value in node.items() if name == key]
        return found + [v for value in node.values() for v in _values_named(value, key)]
    if isinstance(node, list):
        return [v for item in node for v in _values_named(item, key)]
    if isinstance(node, str) and re.search(rf"\b{key}['\"]?\s*[=:]", node):
        # Inside an expression such as jsonencode({... environment = [...] ...}).
        return [node]
    return []


# --- encryption -------------------------------------------------------------------------------


def test_every_data_store_is_encrypted(tf: Configuration) -> None:
    databases = tf.resources("aws_db_instance") + tf.resources("aws_rds_cluster")
    assert databases, "no PostgreSQL (aws_db_instance / aws_rds_cluster) defined"
    for db in databases:
        assert attr(db.body, "storage_encrypted") is True, f"{db.address}: storage_encrypted must be true"
        assert references(attr(db.body, "kms_key_id", ""), r"kms"), f"{db.address}: encrypt with the CMK"

    redis_groups = tf.resources("aws_elasticache_replication_group")
    assert redis_groups, "no ElastiCache replication group defined"
    for group in redis_groups:
        for flag in ("at_rest_encryption_enabled", "transit_encryption_enabled"):
            assert attr(group.body, flag) is True, f"{group.address}: {flag} must be true"
        assert attr(group.body, "kms_key_id", None), f"{group.address}: at-rest encryption with the CMK"
        assert attr(group.body, "auth_token", None), f"{group.address}: needs an AUTH token"

    tables = tf.resources("aws_dynamodb_table")
    assert tables, "no DynamoDB table defined"
    for table in tables:
        (sse,) = blocks(table.body, "server_side_encryption")
        assert attr(sse, "enabled") is True and attr(sse, "kms_key_arn", None), (
            f"{table.address}: server-side encryption with a customer-managed KMS key"
        )

    for secret in tf.resources("aws_secretsmanager_secret"):
        assert attr(secret.body, "kms_key_id", None), f"{secret.address}: encrypt with the CMK"
    for group in tf.resources("aws_cloudwatch_log_group"):
        assert attr(group.body, "kms_key_id", None), f"{group.address}: encrypt logs with the CMK"
    for topic in tf.resources("aws_sns_topic"):
        assert attr(topic.body, "kms_master_key_id", None), f"{topic.address}: encrypt the topic"
    for repository in tf.resources("aws_ecr_repository"):
        (config,) = blocks(repository.body, "encryption_configuration")
        assert attr(config, "encryption_type") == "KMS", f"{repository.address}: KMS encryption"
    for key in tf.resources("aws_kms_key"):
        assert attr(key.body, "enable_key_rotation") is True, f"{key.address}: rotate the key"


def test_postgres_is_multi_az_with_point_in_time_recovery(tf: Configuration) -> None:
    db = _one(tf.resources("aws_db_instance"), "aws_db_instance")
    assert attr(db.body, "engine") == "postgres"
    assert attr(db.body, "multi_az") is True
    assert attr(db.body, "skip_final_snapshot") is False
    assert references(attr(db.body, "backup_retention_period"), r"var\.backup_retention_days")
    # Automated backups (retention >= 1) are what point-in-time recovery restores from.
    retention = tf.variables()["db_backup_retention_days"]
    assert references(blocks(retention.body, "validation"), r">= 1"), "retention 0 would disable PITR"
    assert "CREATE EXTENSION" in (tf.root / "modules/postgres/main.tf").read_text(), "note pgvector setup"


def test_progress_table_shape(tf: Configuration) -> None:
    table = _one(tf.resources("aws_dynamodb_table"), "aws_dynamodb_table")
    assert attr(table.body, "billing_mode") == "PAY_PER_REQUEST"
    assert attr(table.body, "hash_key") == "learner_id"
    assert attr(table.body, "range_key") == "seq"
    types = {attr(a, "name"): attr(a, "type") for a in blocks(table.body, "attribute")}
    assert types == {"learner_id": "S", "seq": "S"}
    (pitr,) = blocks(table.body, "point_in_time_recovery")
    assert attr(pitr, "enabled") is True


def test_playlists_on_a_cluster_and_queues_on_a_single_replicated_redis(tf: Configuration) -> None:
    redis_calls = tf.module_calls(source="./modules/redis")
    modes = {name: attr(call.body, "cluster_mode") for name, call in redis_calls.items()}
    assert modes == {"playlist_redis": True, "queue_redis": False}
    assert attr(redis_calls["queue_redis"].body, "shards") == 1
    group = _one(tf.resources("aws_elasticache_replication_group"), "replication group")
    assert attr(group.body, "automatic_failover_enabled") is True
    assert attr(group.body, "multi_az_enabled") is True
    assert attr(group.body, "transit_encryption_mode") == "required"


# --- reachability -----------------------------------------------------------------------------


def _ports(rule: dict[str, Any]) -> set[Any]:
    """Ports a rule opens; `from_port = each.value` over a literal for_each map means its values."""
    port = attr(rule, "from_port", None)
    if references(port, r"each\.value"):
        return set(attr(rule, "for_each").values())
    return {port, attr(rule, "to_port", None)}


def test_nothing_but_the_alb_is_reachable_from_the_internet(tf: Configuration) -> None:
    for group in tf.resources("aws_security_group"):
        for ingress in blocks(group.body, "ingress"):
            cidrs = set(attr(ingress, "cidr_blocks", [])) | set(attr(ingress, "ipv6_cidr_blocks", []))
            assert not cidrs & PUBLIC_CIDRS, f"{group.address}: inline ingress from the internet"
    for rule in tf.resources("aws_security_group_rule"):
        if attr(rule.body, "type") == "ingress":
            cidrs = set(attr(rule.body, "cidr_blocks", [])) | set(attr(rule.body, "ipv6_cidr_blocks", []))
            assert not cidrs & PUBLIC_CIDRS, f"{rule.address}: ingress from the internet"

    public_rules = [
        rule
        for rule in tf.resources("aws_vpc_security_group_ingress_rule")
        if {attr(rule.body, "cidr_ipv4", None), attr(rule.body, "cidr_ipv6", None)} & PUBLIC_CIDRS
    ]
    assert public_rules, "the ALB must be reachable on 443"
    for rule in public_rules:
        assert references(attr(rule.body, "security_group_id"), r"aws_security_group\.alb\."), (
            f"{rule.address}: only the ALB's security group may admit the internet"
        )
        assert _ports(rule.body) <= {80, 443}, f"{rule.address}: the ALB is open on 443 and 80 only"

    load_balancers = tf.resources("aws_lb")
    assert [attr(lb.body, "internal") for lb in load_balancers] == [False]
    for db in tf.resources("aws_db_instance") + tf.resources("aws_rds_cluster_instance"):
        assert attr(db.body, "publicly_accessible") is False, f"{db.address}: must not be public"
    for service in tf.resources("aws_ecs_service"):
        (network,) = blocks(service.body, "network_configuration")
        assert attr(network, "assign_public_ip") is False, f"{service.address}: no public IP"
    for subnet in tf.resources("aws_subnet"):
        assert attr(subnet.body, "map_public_ip_on_launch", False) is False, f"{subnet.address}"
    assert not tf.resources("aws_instance"), "no EC2 instances: everything runs on Fargate"


def test_every_security_group_is_attached(tf: Configuration) -> None:
    """Backs the inline CKV2_AWS_5 skips: checkov cannot follow groups across module outputs."""
    (output,) = tf.of("output", "security_group_ids", module="modules/network")
    roles = set(attr(output.body, "value"))
    root_text = "\n".join(text(call.body) for call in tf.module_calls().values())
    used = set(re.findall(r"security_group_ids\[\W*(\w+)\W*\]", root_text))
    endpoint = _one(tf.of("resource", "aws_vpc_endpoint", "interface"), "interface endpoints")
    assert references(attr(endpoint.body, "security_group_ids"), r"aws_security_group\.endpoints\.")
    assert roles - {"endpoints"} <= used, f"security groups never attached: {roles - {'endpoints'} - used}"


def test_alb_serves_tls_and_redirects_http(tf: Configuration) -> None:
    listeners = {attr(listener.body, "port"): listener.body for listener in tf.resources("aws_lb_listener")}
    assert set(listeners) == {80, 443}
    assert attr(listeners[443], "protocol") == "HTTPS"
    assert attr(listeners[443], "ssl_policy").startswith("ELBSecurityPolicy-TLS13")
    (redirect_action,) = blocks(listeners[80], "default_action")
    assert attr(redirect_action, "type") == "redirect"
    (redirect,) = blocks(redirect_action, "redirect")
    assert (attr(redirect, "protocol"), str(attr(redirect, "port"))) == ("HTTPS", "443")
    assert tf.resources("aws_wafv2_web_acl_association"), "the ALB sits behind a WAF"


# --- services -----------------------------------------------------------------------------------


def test_four_services_with_their_commands(tf: Configuration) -> None:
    services = _services(tf)
    assert set(services) == SERVICES
    assert references(attr(services["factory"].body, "command"), r"worker.*factory")
    assert references(attr(services["curator"].body, "command"), r"worker.*curator")
    (serve,) = [
        attr(b.body, "serve_command") for b in tf.of("locals", module=".") if "serve_command" in b.body
    ]
    assert serve[:2] == ["lessonloop", "serve"]
    for name in ("api", "portal"):
        assert references(attr(services[name].body, "command"), r"local\.serve_command"), f"module.{name}"


def test_web_services_take_client_addresses_from_the_alb(tf: Configuration) -> None:
    """Behind the ALB every client arrives from the balancer's few addresses: the API and the portal
    trust X-Forwarded-For from the VPC's range (the ALB's nodes), or the per-address limits would
    throttle all clients together."""
    services = _services(tf)
    setting = r"['\"]LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS['\"]\s*[:=]\s*['\"]\$\{var\.vpc_cidr\}['\"]"
    for name in ("api", "portal"):
        assert references(attr(services[name].body, "environment"), setting), f"module.{name}"


def test_every_ecs_service_autoscales(tf: Configuration) -> None:
    services = tf.resources("aws_ecs_service")
    assert services
    targets = tf.resources("aws_appautoscaling_target")
    policies = tf.resources("aws_appautoscaling_policy")
    for service in services:
        name = service.labels[1]
        scaled = [
            target
            for target in targets
            if target.module == service.module
            and references(attr(target.body, "resource_id"), rf"aws_ecs_service\.{name}\.name")
        ]
        assert scaled, f"{service.address}: no aws_appautoscaling_target"
        for target in scaled:
            target_ref = rf"aws_appautoscaling_target\.{target.labels[1]}\."
            assert any(
                policy.module == target.module and references(attr(policy.body, "resource_id"), target_ref)
                for policy in policies
            ), f"{target.address}: no aws_appautoscaling_policy"
        for key in ("count", "for_each"):
            assert key not in service.body, f"{service.address}: scaling must not be optional"

    scaling = {name: attr(call.body, "autoscaling") for name, call in _services(tf).items()}
    assert {name: cfg["metric"] for name, cfg in scaling.items()} == {
        "api": "cpu",
        "portal": "cpu",
        "factory": "queue_depth",
        "curator": "queue_depth",
    }
    assert scaling["factory"]["queue"] == "generation_jobs"
    assert scaling["curator"]["queue"] == "refill_check"
    policy = _one(policies, "aws_appautoscaling_policy")
    for needle in ("Lessonloop", "QueueDepth", "Queue", "ECSServiceAverageCPUUtilization"):
        assert needle in text(policy.body), f"{policy.address}: {needle} missing"


def test_secrets_come_from_secrets_manager_only(tf: Configuration) -> None:
    # Anywhere an `environment` is built - module arguments, container definitions - no secret.
    for block in tf.blocks:
        for value in _values_named(block.body, "environment"):
            leaked = set(SECRET_LOOKING.findall(text(value))) | (_env_names(value) & SECRET_ENV_NAMES)
            assert not leaked, f"{block.address}: {sorted(leaked)} set in plain `environment`; use `secrets`"

    for name, call in _services(tf).items():
        secrets = attr(call.body, "secrets")
        for env_name in _env_names(secrets):
            assert references(
                secrets, rf"{env_name}\W+[=:]\W*\$?\{{?module\.secrets\.arns\[\W*{env_name}\W*\]"
            ), f'module.{name}: {env_name} must come from module.secrets.arns["{env_name}"]'
        for target in re.findall(r"=>\s*([\w.\[\]]+)", text(secrets)):
            assert re.fullmatch(r"module\.secrets\.arns\[\w+\]", target), (
                f"module.{name}: secret from {target}"
            )
        assert not references(secrets, r"arn:aws"), f"module.{name}: secret ARNs come from module.secrets"
        assert {"DATABASE_URL", "REDIS_URL", "LESSONLOOP_QUEUE_REDIS_URL"} <= _secret_names(tf, call), (
            f"module.{name}"
        )

    # The task definition maps var.secrets to `secrets` (valueFrom) and nothing else.
    container = "\n".join(text(b.body) for b in tf.of("locals", module="modules/service"))
    assert re.search(r"secrets\W+=?\W*\[?\W*for .* in .*var\.secrets", container), "container secrets"
    assert "valueFrom" in container


def test_each_service_gets_only_the_secrets_it_needs(tf: Configuration) -> None:
    secrets = {name: _secret_names(tf, call) for name, call in _services(tf).items()}
    llm_keys = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    with_llm_keys = {name for name, names in secrets.items() if names & llm_keys}
    assert with_llm_keys == {"factory"}, f"LLM keys go to the factory only, not {with_llm_keys - {'factory'}}"
    with_token_secret = {name for name, names in secrets.items() if "LESSONLOOP_TOKEN_SECRET" in names}
    assert with_token_secret == {"api", "portal"}, (
        f"token secret: API and portal only, not {with_token_secret}"
    )
    # The execution role reads exactly the secrets its task injects.
    execution = _one(tf.of("resource", "aws_iam_role_policy", "execution"), "execution role policy")
    assert references(
        attr(execution.body, "policy"), r"secretsmanager:GetSecretValue.*values\(var\.secrets\)"
    )


# --- IAM ----------------------------------------------------------------------------------------

# Actions AWS does not scope to resources; "*" is allowed for these alone, and with a condition
# where one exists.
UNSCOPED_ACTIONS = {"cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"}


def _statements(tf: Configuration) -> list[tuple[str, list[str], Any, Any]]:
    """(where, actions, resources, condition) of every IAM policy statement in the config."""
    found = []
    for doc in tf.of("data", "aws_iam_policy_document"):
        for statement in blocks(doc.body, "statement"):
            found.append(
                (
                    doc.address,
                    list(attr(statement, "actions")),
                    attr(statement, "resources", None),
                    blocks(statement, "condition"),
                )
            )
    return found


def test_no_wildcard_permissions(tf: Configuration) -> None:
    statements = _statements(tf)
    assert statements
    for where, actions, resources, conditions in statements:
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{where}: wildcard action {action}"
        if resources == ["*"]:
            assert set(actions) <= UNSCOPED_ACTIONS, f"{where}: {actions} on every resource"
            assert conditions or set(actions) == {"ecr:GetAuthorizationToken"}, f"{where}: needs a condition"

    # Inline jsonencode() policies of IAM roles: no wildcard actions either.
    for kind in ("aws_iam_role_policy", "aws_iam_policy"):
        for policy in tf.resources(kind):
            for clause in re.findall(
                r"Action['\"]?\s*[=:]\s*(\[[^\]]*\]|\S+)", text(attr(policy.body, "policy"))
            ):
                wildcard = re.search(r"['\"](\*|[\w-]+:\*)['\"]", clause)
                assert not wildcard, f"{policy.address}: wildcard action {wildcard and wildcard.group(1)}"
    for attachment in tf.resources("aws_iam_role_policy_attachment"):
        arn = attr(attachment.body, "policy_arn")
        assert not re.search(r"AdministratorAccess|PowerUser|FullAccess", arn), f"{attachment.address}: {arn}"


def test_task_roles_are_least_privilege(tf: Configuration) -> None:
    docs = {doc.labels[1]: doc for doc in tf.of("data", "aws_iam_policy_document")}

    def actions(doc_name: str) -> set[str]:
        return {a for s in blocks(docs[doc_name].body, "statement") for a in attr(s, "actions")}

    role_doc = {
        name: re.search(
            r"aws_iam_policy_document\.(\w+)\.json", text(attr(call.body, "task_policy_json"))
        ).group(1)
        for name, call in _services(tf).items()
    }
    assert len({role_doc["api"], role_doc["curator"], role_doc["portal"]}) == 3, (
        f"shared policies: {role_doc}"
    )
    dynamo = {name: {a for a in actions(doc) if a.startswith("dynamodb:")} for name, doc in role_doc.items()}
    assert "dynamodb:PutItem" in dynamo["api"], "the API writes progress"
    reads = ("dynamodb:Get", "dynamodb:BatchGet", "dynamodb:Query")
    assert dynamo["curator"] and all(a.startswith(reads) for a in dynamo["curator"]), (
        f"the curator only reads progress: {sorted(dynamo['curator'])}"
    )
    assert not dynamo["portal"] and not dynamo["factory"], "portal and factory never touch the progress table"
    # Separate roles per service, and the task role is never the execution role.
    definition = _one(tf.resources("aws_ecs_task_definition"), "task definition")
    assert references(attr(definition.body, "execution_role_arn"), r"aws_iam_role\.execution\.")
    assert references(attr(definition.body, "task_role_arn"), r"aws_iam_role\.task\.")


# --- alarms -------------------------------------------------------------------------------------


def test_alarms_cover_latency_errors_queues_and_breakers(tf: Configuration) -> None:
    alarms = " ".join(text(alarm.body) for alarm in tf.resources("aws_cloudwatch_metric_alarm"))
    for needle in ("TargetResponseTime", "p99", "HTTPCode_Target_5XX_Count", "QueueDepth", "BreakerOpen"):
        assert needle in alarms, f"no alarm on {needle}"
    assert all(attr(a.body, "alarm_actions", None) for a in tf.resources("aws_cloudwatch_metric_alarm"))


# --- environments ---------------------------------------------------------------------------------


def test_staging_and_prod_set_the_same_variables(tf: Configuration) -> None:
    staging, prod = tf.tfvars("staging"), tf.tfvars("prod")
    assert set(staging) == set(prod), f"only in one file: {sorted(set(staging) ^ set(prod))}"
    declared = tf.variables()
    assert set(staging) <= set(declared), f"undeclared: {sorted(set(staging) - set(declared))}"
    # image_tag changes with every deploy and is passed with -var; everything else is per environment.
    required = {name for name, var in declared.items() if "default" not in var.body} - {"image_tag"}
    assert required <= set(staging), f"not set by the tfvars: {sorted(required - set(staging))}"
    assert (staging["environment"], prod["environment"]) == ("staging", "prod")


def test_variables_are_documented(tf: Configuration) -> None:
    undocumented = [
        f"{block.module}: {block.labels[0]}"
        for block in tf.blocks
        if block.kind in ("variable", "output") and not attr(block.body, "description", "")
    ]
    assert not undocumented, f"variables/outputs without a description: {undocumented}"


# --- the app's settings ---------------------------------------------------------------------------


def _settings_env_names() -> set[str]:
    settings = pytest.importorskip("shared.settings")
    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    names: set[str] = set()

    def walk(model: type[BaseSettings]) -> None:
        prefix = model.model_config.get("env_prefix", "")
        for field_name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings):
                walk(kind)
                continue
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(choice for choice in alias.choices if isinstance(choice, str))
            elif isinstance(alias, str):
                names.add(alias)
            else:
                names.add(f"{prefix}{field_name}")

    walk(settings.Settings)
    return {name.upper() for name in names}


def test_every_variable_given_to_a_service_is_read_by_the_settings(tf: Configuration) -> None:
    read = _settings_env_names() | {"AWS_REGION"}  # AWS_REGION is read by boto3 itself
    for name, call in _services(tf).items():
        given = _env_names(attr(call.body, "environment")) | _secret_names(tf, call)
        assert given <= read, f"module.{name} sets variables shared/settings.py never reads: {given - read}"


# --- what `terraform validate` would catch first (it needs the providers, so it cannot run here) ---


def test_module_calls_set_exactly_the_declared_variables(tf: Configuration) -> None:
    for name, call in tf.module_calls().items():
        module = attr(call.body, "source").removeprefix("./")
        declared = tf.variables(module)
        assert declared, f"module.{name}: no variables found in {module}"
        given = set(call.body) - {"source", "count", "for_each", "depends_on", "providers"}
        required = {var for var, block in declared.items() if "default" not in block.body}
        assert not given - set(declared), f"module.{name}: unknown arguments {sorted(given - set(declared))}"
        assert not required - given, f"module.{name}: missing arguments {sorted(required - given)}"


def test_references_resolve(tf: Configuration) -> None:
    modules = {block.module for block in tf.blocks}
    outputs = {module: {block.labels[0] for block in tf.of("output", module=module)} for module in modules}
    sources = {name: attr(call.body, "source").removeprefix("./") for name, call in tf.module_calls().items()}
    problems = []
    for module in sorted(modules):
        in_module = [block for block in tf.blocks if block.module == module]
        body = "\n".join(text(block.body) for block in in_module)
        local_names = {name for block in in_module if block.kind == "locals" for name in block.body}
        resources = {block.labels[:2] for block in in_module if block.kind == "resource"}
        data = {block.labels[:2] for block in in_module if block.kind == "data"}
        for var in set(re.findall(r"\bvar\.(\w+)", body)) - set(tf.variables(module)):
            problems.append(f"{module}: var.{var} is not declared")
        for local in set(re.findall(r"\blocal\.(\w+)", body)) - local_names:
            problems.append(f"{module}: local.{local} is not defined")
        for ref in set(re.findall(r"(?<![\w.])((?:aws|random)_\w+)\.(\w+)\b", body)) - resources:
            problems.append(f"{module}: resource {'.'.join(ref)} does not exist")
        for ref in set(re.findall(r"\bdata\.(\w+)\.(\w+)", body)) - data:
            problems.append(f"{module}: data.{'.'.join(ref)} does not exist")
        for call, output in set(re.findall(r"\bmodule\.(\w+)\.(\w+)", body)):
            if module != "." or call not in sources:
                problems.append(f"{module}: module.{call} is not called here")
            elif output not in outputs[sources[call]]:
                problems.append(f"{module}: module.{call} has no output {output}")
    assert not problems, "\n".join(problems)
