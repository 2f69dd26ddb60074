import yaml

from tagship import override, proxy
from tagship.override import PublishedPort
from tagship.switch import stop_grace_seconds


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


def test_front_site_publishes_each_port_and_forwards_without_keepalive() -> None:
    text = proxy.front_site("shop", (PublishedPort(9876, 8080), PublishedPort(9877, 8081)), ())
    assert ":9876 {" in text and ":9877 {" in text
    assert f"reverse_proxy 127.0.0.1:{proxy.BACK_PORT}" in text and "keepalive off" in text
    assert "header_up X-Tagship-App shop" in text


def test_front_site_with_host_names_uses_automatic_https_addresses() -> None:
    text = proxy.front_site("shop", (PublishedPort(9876, 8080),), ("shop.example.com",))
    assert text.count("shop.example.com {") == 1 and ":9876" not in text


def test_back_route_sends_the_app_to_one_container() -> None:
    text = proxy.back_route("shop", "shop-web-2:8080")
    assert "@app_shop header X-Tagship-App shop" in text and "reverse_proxy shop-web-2:8080" in text


def test_proxy_run_publishes_every_port_and_mounts_its_config_volume() -> None:
    cmd = proxy.run(
        proxy.ProxySettings("tagship-proxy", "caddy:2-alpine", "tagship"),
        (PublishedPort(9876, 9876), PublishedPort(80, 80, "127.0.0.1")),
    )
    argv = list(cmd.argv)
    assert argv[argv.index("--publish") + 1] == "127.0.0.1:80:80"
    assert "9876:9876" in argv and "tagship-proxy-config:/etc/tagship" in argv
    assert argv[argv.index("caddy:2-alpine") + 1] == "-c"


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
