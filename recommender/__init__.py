"""The recommender: interactions -> signals -> features -> a ranker. Pure: never imports lbs or flask.

- ``interactions``: event weights, time decay and log scaling into a users x items matrix.
- ``als``: implicit's ALS behind a factory that picks the backend once; numpy factors out.
- ``signals``: what a window teaches about places (popularity, newcomers, transitions,
  hours, ALS); ``features``: one row per candidate, each feature with a direction.
- ``ratings``: the items' review ratings (Bayesian average toward a category prior, count).
- ``ranker``: LightGBM LambdaRank over the features, monotone in each feature's direction.
- ``training``: tune the ranker on a validation split of the window, refit the signals.
- ``model`` and ``artifact``: id maps, scoring, the versioned file and its CURRENT pointer.
- ``exploration``: slots for merchants without history.
- ``evaluation``, ``baselines``, ``metrics``: the offline protocol (docs/recommender.md).
"""
