import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tagship.builders import docker, override, proxy
from tagship.builders.command import Command
from tagship.builders.override import PublishedPort
from tagship.runtime.compose.switch import stop_grace_seconds, worker_count
from tagship.runtime.compose.verify import Problem, container_problem


def test_override_resets_name_and_ports_and_keeps_the_service_networks() -> None:
    text = override.render("app", ["default", "backend"], "tagship", "meta-hub")
    assert "container_name: !reset null" in text
    assert "ports: !reset []" in text
    data = yaml.safe_load(text.replace("!reset null", "null").replace("!reset []", "[]"))
    assert set(data["services"]["app"]["networks"]) == {"default", "backend", "tagship"}
    assert data["networks"]["tagship"] == {"external": True, "name": "tagship"}


def test_published_ports_from_rendered_config() -> None:
    service = {
        "ports": [
            {"target": 8080, "published": "9876", "protocol": "tcp", "host_ip": "127.0.0.1"},
            {"target": 9000, "protocol": "tcp"},
        ]
    }
    assert override.published_ports(service) == (PublishedPort(9876, 8080, "127.0.0.1"),)


def test_an_app_served_on_ports_has_no_front_snippet_its_ports_have_listeners() -> None:
    assert proxy.front_site("shop", ()) == ""
    settings = proxy.ProxySettings("tagship-proxy", "caddy:2", "tagship")
    route = proxy.ListenerRoute("shop")  # not switched yet: through the back tier
    cmd = proxy.run_listener(settings, "haproxy:lts", PublishedPort(9876, 9876, "127.0.0.1"), route, 30)
    argv = cmd.argv
    assert argv[argv.index("--name") + 1] == "tagship-proxy-127.0.0.1-9876"
    assert argv[argv.index("--publish") + 1] == f"127.0.0.1:9876:{proxy.LISTENER_PORT}"
    assert "tagship.listener=tagship-proxy" in argv and "tagship.app=shop" in argv
    assert "haproxy:lts" in argv
    config = argv[-1]
    assert f"    bind :{proxy.LISTENER_PORT}\n" in config
    assert f"    server back tagship-proxy:{proxy.BACK_PORT}\n" in config
    assert "    http-request set-header X-Tagship-App shop\n" in config
    assert proxy.listener_name("p", PublishedPort(80, 80, "::1")) == "p-__1-80"


def test_a_listener_sends_straight_to_the_containers_and_reloads_without_resetting_clients() -> None:
    settings = proxy.ProxySettings("tagship-proxy", "caddy:2", "tagship")
    route = proxy.ListenerRoute("shop", ("shop-web-3:8000", "shop-web-4:8000"), (("shop-web-4", "10.0.0.4"),))
    config = proxy.listener_config(settings, route, 12.4)
    assert "    server s0 shop-web-3:8000\n    server s1 shop-web-4:8000 init-addr 10.0.0.4,libc,none\n" in config
    assert "X-Tagship-App" not in config and "server back" not in config
    # What makes a switch seamless: idle connections are not closed under a client by a reload, and
    # the replaced worker stops by the drain timeout at the latest.
    assert "    option idle-close-on-response\n" in config and "    hard-stop-after 12s\n" in config
    assert "    http-request disable-l7-retry unless METH_GET || METH_HEAD\n" in config
    cmd = proxy.route_listener("tagship-proxy-9876", settings, route, 12.4)
    assert cmd.argv[:3] == ("docker", "exec", "tagship-proxy-9876")
    assert cmd.argv[-2:] == (proxy.LISTENER_CONFIG, config)
    assert proxy.drain_listener("tagship-proxy-9876", 0.2).argv[-1] == "1"


def test_a_watched_listener_checks_the_new_containers_and_keeps_the_old_as_backups() -> None:
    settings = proxy.ProxySettings("tagship-proxy", "caddy:2", "tagship")
    known = (("shop-web-3", "10.0.0.3"), ("shop-web-1", "10.0.0.1"))
    route = proxy.ListenerRoute("shop", ("shop-web-3:8000",), known, backups=("shop-web-1:8000",))
    config = proxy.listener_config(settings, route, 30)
    assert (
        "    server s0 shop-web-3:8000 init-addr 10.0.0.3,libc,none"
        " check inter 1s fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down\n"
        "    server b0 shop-web-1:8000 init-addr 10.0.0.1,libc,none backup\n"
    ) in config
    # A crashed container's address answers nothing: a try gives up after 1 s, marks it down and goes
    # to another server (with 5 s and three tries on the same one, clients waited past 10 s).
    assert "    timeout connect 1s\n" in config and "    option redispatch 1\n" in config
    plain = proxy.listener_config(settings, proxy.ListenerRoute("shop", ("shop-web-3:8000",), known), 30)
    assert " check" not in plain and "backup" not in plain


def test_listeners_are_parsed_from_docker_ps() -> None:
    found = proxy.parse_listeners("tagship-proxy-9876\tshop\trunning\ntagship-proxy-9877\tapi\texited\n\n")
    assert found == {
        "tagship-proxy-9876": proxy.Listener("tagship-proxy-9876", "shop", True),
        "tagship-proxy-9877": proxy.Listener("tagship-proxy-9877", "api", False),
    }


def test_front_site_with_host_names_uses_automatic_https_addresses() -> None:
    text = proxy.front_site("shop", ("shop.example.com",))
    assert text.count("shop.example.com {") == 1 and ":9876" not in text
    assert f"reverse_proxy 127.0.0.1:{proxy.BACK_PORT}" in text and "header_up X-Tagship-App shop" in text


def test_back_route_balances_the_app_over_its_containers() -> None:
    text = proxy.back_route("shop", ("shop-web-2:8080",))
    assert "@app_shop header X-Tagship-App shop" in text and "reverse_proxy shop-web-2:8080 {" in text
    assert "drain" not in text
    replicas = proxy.back_route("shop", ("shop-web-4:8080", "shop-web-5:8080", "shop-web-6:8080"))
    assert "reverse_proxy shop-web-4:8080 shop-web-5:8080 shop-web-6:8080 {" in replicas


def test_back_route_keeps_the_replaced_containers_in_a_route_that_never_matches() -> None:
    text = proxy.back_route("shop", ("shop-web-3:8080",), ("shop-web-1:8080", "shop-web-2:8080"))
    assert "@drain_shop not path *" in text
    assert "handle @drain_shop {\n\treverse_proxy shop-web-1:8080 shop-web-2:8080\n}" in text


def test_back_route_keeps_the_old_release_last_while_the_new_one_is_watched() -> None:
    old = ("shop-web-1:8080",)
    text = proxy.back_route("shop", ("shop-web-2:8080", "shop-web-3:8080"), old, backups=old)
    assert "reverse_proxy shop-web-2:8080 shop-web-3:8080 shop-web-1:8080 {" in text
    assert "lb_policy first" in text and "fail_duration 5s" in text and "dial_timeout 1s" in text
    assert "lb_try_interval 10ms" in text, "a retry waits no longer than it must: a reload fails a waiting one"
    plain = proxy.back_route("shop", ("shop-web-2:8080",), old)
    assert "lb_policy" not in plain and "fail_duration" not in plain and "reverse_proxy shop-web-2:8080 {" in plain


def test_proxy_run_publishes_every_port_and_mounts_its_config_volume() -> None:
    cmd = proxy.run(
        proxy.ProxySettings("tagship-proxy", "caddy:2-alpine", "tagship"),
        (PublishedPort(9876, 9876), PublishedPort(80, 80, "127.0.0.1")),
    )
    argv = list(cmd.argv)
    assert argv[argv.index("--publish") + 1] == "127.0.0.1:80:80"
    assert "9876:9876" in argv and "tagship-proxy-config:/etc/tagship" in argv
    assert argv[argv.index("caddy:2-alpine") + 1] == "-c"
    other = proxy.run(proxy.ProxySettings("edge", "caddy:2-alpine", "tagship"), ()).argv
    assert "edge-config:/etc/tagship" in other, "another proxy on the server keeps its own config"


def test_in_flight_counts_only_the_named_upstream() -> None:
    listing = '[{"address":"a-web-1:8080","num_requests":2,"fails":0},{"address":"a-web-2:8080","num_requests":1}]'
    assert proxy.in_flight(listing, "a-web-1:8080") == 2
    assert proxy.in_flight(listing, "gone:1") == 0
    assert proxy.in_flight("not json", "a") == 0


def test_bound_ports_from_inspect() -> None:
    inspected = [{"HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "9876"}]}}}]
    assert proxy.bound_ports(inspected) == {("", 9876)}


def test_stop_grace_period_parsing() -> None:
    assert stop_grace_seconds({}) == 10
    assert stop_grace_seconds({"stop_grace_period": "1m30s"}) == 90
    assert stop_grace_seconds({"stop_grace_period": "500ms"}) == 1


def test_site_addresses_are_read_per_app() -> None:
    listing = (
        "== shop.caddy\n# tagship: shop\n:9876 {\n\treverse_proxy shop-web-2:8080 {\n\t}\n}\n"
        "== blog.caddy\nblog.example.com {\n}\n"
    )
    assert proxy.site_addresses(listing) == {"shop": {":9876"}, "blog": {"blog.example.com"}}


# ---- the proxy's switch script, run by the local sh with a stand-in `caddy` ---------------------


def _switch_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A config dir and a fake caddy that refuses any snippet containing BROKEN and logs reloads."""
    conf = tmp_path / "etc"
    for tier in ("front", "back"):
        (conf / tier).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    caddy = bin_dir / "caddy"
    caddy.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/reloads\n'
        f"if cat {conf}/*/*.caddy | grep -q BROKEN; then echo 'adapting config: BROKEN' >&2; exit 1; fi\n"
    )
    wget = bin_dir / "wget"
    wget.write_text('#!/bin/sh\necho \'[{"address":"shop-web-1:8080","num_requests":1}]\'\n')
    for tool in (caddy, wget):
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, conf


def _run_script(cmd: Command, env: dict[str, str], conf: Path) -> subprocess.CompletedProcess[str]:
    argv = [a.replace(proxy.CONFIG_DIR, str(conf)) for a in cmd.argv[cmd.argv.index("sh") :]]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def test_switch_changes_both_tiers_then_lists_upstreams(tmp_path: Path) -> None:
    env, conf = _switch_env(tmp_path)
    done = _run_script(proxy.switch_sites("p", "shop", "run1", "back v1\n", "front\n"), env, conf)
    assert done.returncode == 0, done.stderr
    switched = proxy.parse_switch(done.stdout)
    assert switched.changed == ("back", "front") and not switched.refused
    assert proxy.in_flight(switched.upstreams, "shop-web-1:8080") == 1
    assert (conf / "back" / "shop.caddy").read_text() == "back v1\n"


def test_an_identical_front_is_not_reloaded(tmp_path: Path) -> None:
    env, conf = _switch_env(tmp_path)
    _run_script(proxy.switch_sites("p", "shop", "run1", "back v1\n", "front\n"), env, conf)
    (tmp_path / "reloads").unlink()
    done = _run_script(proxy.switch_sites("p", "shop", "run1", "back v2\n", "front\n"), env, conf)
    assert proxy.parse_switch(done.stdout).changed == ("back",)
    reloads = (tmp_path / "reloads").read_text()
    assert "back.caddyfile" in reloads and "front.caddyfile" not in reloads


def test_a_refused_front_puts_both_tiers_back(tmp_path: Path) -> None:
    env, conf = _switch_env(tmp_path)
    _run_script(proxy.switch_sites("p", "shop", "run1", "back v1\n", "front\n"), env, conf)
    done = _run_script(proxy.switch_sites("p", "shop", "run1", "back v2\n", "front BROKEN\n"), env, conf)
    assert done.returncode == 1 and proxy.parse_switch(done.stdout).refused == "front"
    assert (conf / "back" / "shop.caddy").read_text() == "back v1\n"
    assert (conf / "front" / "shop.caddy").read_text() == "front\n"


def test_unswitch_undoes_only_what_that_switch_changed(tmp_path: Path) -> None:
    env, conf = _switch_env(tmp_path)
    back, front = conf / "back" / "shop.caddy", conf / "front" / "shop.caddy"
    _run_script(proxy.switch_sites("p", "shop", "run1", "back v1\n", "front\n"), env, conf)  # first: nothing before
    done = _run_script(proxy.unswitch_sites("p", "shop", "run1"), env, conf)
    assert done.returncode == 0, done.stderr
    assert not back.exists() and not front.exists()
    _run_script(proxy.switch_sites("p", "shop", "run2", "back v1\n", "front\n"), env, conf)
    _run_script(proxy.switch_sites("p", "shop", "run3", "back v2\n", "front\n"), env, conf)
    _run_script(proxy.unswitch_sites("p", "shop", "run3"), env, conf)  # front was the same: left alone
    assert back.read_text() == "back v1\n" and front.read_text() == "front\n"
    # A switch that never ran (its command was interrupted before it started), or an earlier one:
    # its undo changes nothing; the routes stay where they are.
    for run in ("never-ran", "run2", "run3"):
        assert _run_script(proxy.unswitch_sites("p", "shop", run), env, conf).returncode == 0
        assert back.read_text() == "back v1\n" and front.read_text() == "front\n"


def test_verify_problems_say_whether_waiting_can_fix_them() -> None:
    running = {"Image": "sha256:new", "Name": "/shop-web-2", "State": {"Running": True}, "RestartCount": 0}
    assert container_problem([running], "sha256:new", "r:v2") is None
    assert container_problem([], "sha256:new", "r:v2") == Problem("the service has no container")
    restarting = {**running, "RestartCount": 1}
    assert container_problem([restarting], "sha256:new", "r:v2") == Problem("container shop-web-2 is restarting")
    old = {**running, "Image": "sha256:old", "Config": {"Image": "r:v1"}}
    problem = container_problem([running, old], "sha256:new", "r:v2")
    assert problem is not None and problem.final and "runs image 'r:v1', not r:v2" in problem.text
    exited = {**running, "State": {"Running": False, "ExitCode": 3}}
    assert container_problem([exited], "sha256:new", "r:v2") == Problem("container shop-web-2 exited with code 3", True)


def test_worker_count_keeps_the_running_number_and_ignores_a_cut_short_replacement() -> None:
    assert worker_count({}, []) == 1  # none running yet: start one
    assert worker_count({}, ["sha256:a", "sha256:a", "sha256:a"]) == 3  # scaled by hand: kept
    assert worker_count({}, ["sha256:a", "sha256:a", "sha256:b", "sha256:b"]) == 2, "old and new side by side"
    assert worker_count({"deploy": {"replicas": 4}}, ["sha256:a"]) == 4  # declared in compose.yaml
    assert worker_count({"scale": 2}, ["sha256:a"] * 5) == 2


def test_consumers_are_the_services_that_depend_on_the_app_or_those_named() -> None:
    services: dict[str, Any] = {
        "app": {"image": "a"},
        "web": {"image": "caddy", "depends_on": {"app": {"condition": "service_started"}}},
        "worker": {"image": "a", "depends_on": ["app", "redis"]},
        "redis": {"image": "redis"},
    }
    assert override.consumers(services, "app") == ("web", "worker")
    assert override.consumers(services, "app", ("redis", "nope", "app")) == ("redis",)
    assert override.consumers(services, "app", ()) == (), "[] turns the gate off"


def test_the_override_links_each_consumer_to_the_gate_on_the_apps_networks() -> None:
    gate = override.Gate("tagship-gate", "caddy:2", ".tagship/gate", ("web", "worker"))
    data = yaml.safe_load(
        override.render("app", ["default", "backend"], "tagship", "shop", gate).replace("!reset ", "")
    )
    assert data["services"]["web"] == {"links": ["tagship-gate:app"]}
    assert data["services"]["worker"] == {"links": ["tagship-gate:app"]}
    assert set(data["services"]["tagship-gate"]["networks"]) == {"default", "backend", "tagship"}
    assert data["services"]["tagship-gate"]["volumes"] == ["./.tagship/gate:/etc/tagship-gate:ro"]
    assert "tagship-gate" not in override.render("app", ["default"], "tagship", "shop")


def test_with_a_fixed_tag_the_override_sets_the_release_image_for_web_and_its_workers() -> None:
    gate = override.Gate("tagship-gate", "caddy:2", ".tagship/gate", ("nginx", "worker"))
    image = "reg/ns/app:v2@sha256:" + "d" * 64
    text = override.render("app", ["default"], "tagship", "shop", gate, image, ("beat", "worker"))
    services = yaml.safe_load(text.replace("!reset ", ""))["services"]
    assert services["app"]["image"] == image and services["app"]["labels"] == {"tagship.app": "shop"}
    assert services["beat"] == {"image": image}
    assert services["worker"] == {"image": image, "links": ["tagship-gate:app"]}, "a worker that is a consumer"
    assert services["nginx"] == {"links": ["tagship-gate:app"]} and services["tagship-gate"]["image"] == "caddy:2"
    assert override.web_image(text) == image
    assert "image:" not in override.render("app", ["default"], "tagship", "shop", None, "", ("beat",))
    assert override.web_image(override.render("app", ["default"], "tagship", "shop", gate)) == ""


def test_the_plain_switchs_override_sets_only_the_image() -> None:
    text = override.render_images(("web", "worker"), "reg:5000/ns/app:v1")
    assert yaml.safe_load(text) == {
        "services": {"web": {"image": "reg:5000/ns/app:v1"}, "worker": {"image": "reg:5000/ns/app:v1"}}
    }
    assert override.web_image(text) == "reg:5000/ns/app:v1"
    assert override.web_image("not: [yaml") == "" and override.web_image("") == ""


def test_the_gate_forwards_each_port_to_the_proxys_back_tier_naming_the_app() -> None:
    text = proxy.gate_caddyfile("shop", (8000, 8000, 9000), "tagship-proxy")
    assert text.count(":8000 {") == 1 and ":9000 {" in text
    assert "reverse_proxy tagship-proxy:2080 {" in text and "header_up X-Tagship-App shop" in text
    assert "keepalive off" in text, "a back-tier reload must not reset a kept-alive connection"


def test_ports_a_service_or_its_image_exposes() -> None:
    assert override.exposed_ports({"expose": ["8000", "9000/tcp", "x"]}) == (8000, 9000)
    assert docker.parse_exposed_ports('{"8000/tcp": {}, "53/udp": {}, "80/tcp": {}}') == (80, 8000)
    assert docker.parse_exposed_ports("null") == () and docker.parse_exposed_ports("") == ()
