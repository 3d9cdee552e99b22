"""The recommender: interactions -> CSR -> ALS -> scores. Pure: never imports lbs or flask.

Thin until the Recommender issue lands; the API reports ranking="distance" meanwhile.
"""
