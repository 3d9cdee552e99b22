"""The recommender: interactions -> CSR -> ALS -> scores. Pure: never imports lbs or flask.

- ``interactions``: event weights, time decay and log scaling into a users x items matrix.
- ``als``: implicit's ALS behind a factory that picks the backend once; numpy factors out.
- ``metrics``: HR@k, NDCG@k and MRR for one relevant item per case.

Re-ranking and the offline evaluation arrive with the rest of the Recommender issue; the
API reports ranking="distance" meanwhile.
"""
