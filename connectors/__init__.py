"""I/O adapters: codecs, Kafka, feeds, execution gateways, the local broker."""
