"""Training racers' models on drem's workers (issue 19).

So far: the reward-function sandbox (:mod:`drem.training.reward_sandbox`), which runs a
racer's DeepRacer ``reward_function(params)`` in a confined worker process.
"""
