"""The war room (直播作战室): a live page for the people running a stream.

``model`` folds the engine's state and the public topics into one picture (pure, no Kafka);
``talk`` turns that picture into sentences a host can say; ``feed`` moves records from Kafka into
the model; ``server`` serves the page, a JSON snapshot and a server-sent-events feed;
``service`` runs feed and server in the background for `lockstock up` and `lockstock demo`.
"""
