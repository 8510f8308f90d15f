import pytest

from lockstock.codec import SchemaSet
from lockstock.topics import ALL, TABLES, Topics, changelog_topic, changelog_topics


def test_default_names_are_the_public_contract():
    topics = Topics("lockstock")
    assert {name for name, spec in topics if not spec.internal} == {
        "lockstock.orders.placed", "lockstock.orders.events", "lockstock.orders.decisions",
        "lockstock.inventory.commands", "lockstock.inventory.alerts", "lockstock.inventory.audit",
        "lockstock.channels.stock",
        "lockstock.deadletter",
    }
    assert topics.orders_placed == "lockstock.orders.placed"
    assert Topics("shop7").channels_stock == "shop7.channels.stock"


def test_every_topic_names_existing_schemas_and_a_valid_policy():
    records = {n.rsplit(".", 1)[-1] for n in SchemaSet().records}
    for spec in ALL:
        assert spec.value_schemas and set(spec.value_schemas) <= records, spec
        assert spec.cleanup_policy in ("delete", "compact")
        assert spec.key and spec.description
        assert spec.config()["cleanup.policy"] == spec.cleanup_policy
    assert Topics().spec_of("lockstock.channels.stock").cleanup_policy == "compact"


def test_tables_and_changelogs_are_registered():
    assert set(changelog_topics("lockstock")) == {f"lockstock-{t}-changelog" for t in TABLES}
    # SKU-keyed state follows the SKU-keyed topics; order state the order-keyed results.
    assert TABLES["stock"].key == "sku" and TABLES["orders"].key == "order_id"


def test_a_changelog_is_named_only_for_a_table_the_engine_has():
    assert changelog_topic("shop7", "stock") == "shop7-stock-changelog"
    with pytest.raises(ValueError, match="unknown table 'stok'"):
        changelog_topic("shop7", "stok")


def test_docs_topics_md_is_generated_from_the_registry():
    from pathlib import Path

    from apps.cli.topics import registry_markdown
    from lockstock.settings import Settings

    doc = Path(__file__).parents[2] / "docs" / "topics.md"
    assert doc.read_text() == registry_markdown(Settings()), "run: lockstock topics list --markdown > docs/topics.md"
