"""DeepRacer's three example reward functions, as the AWS DeepRacer Developer Guide gives
them ("Reward function examples"): the starting points a racer edits, the functions the
sandbox's tests and benchmark run, and the reward of the RL benchmark ("follow the centre
line"). Each is the source text of a ``reward_function(params)``."""

from __future__ import annotations

FOLLOW_THE_CENTRE_LINE = '''
def reward_function(params):
    """Example of rewarding the agent to follow center line"""
    track_width = params['track_width']
    distance_from_center = params['distance_from_center']
    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width
    if distance_from_center <= marker_1:
        reward = 1.0
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3  # likely crashed/ close to off track
    return float(reward)
'''
STAY_INSIDE_THE_BORDERS = '''
def reward_function(params):
    """Example of rewarding the agent to stay inside the two borders of the track"""
    all_wheels_on_track = params['all_wheels_on_track']
    distance_from_center = params['distance_from_center']
    track_width = params['track_width']
    reward = 1e-3
    if all_wheels_on_track and (0.5*track_width - distance_from_center) >= 0.05:
        reward = 1.0
    return float(reward)
'''
PREVENT_ZIG_ZAG = '''
def reward_function(params):
    """Example of penalize steering, which helps mitigate zig-zag behaviors"""
    distance_from_center = params['distance_from_center']
    track_width = params['track_width']
    abs_steering = abs(params['steering_angle'])  # Only need the absolute steering angle
    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width
    if distance_from_center <= marker_1:
        reward = 1.0
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3  # likely crashed/ close to off track
    ABS_STEERING_THRESHOLD = 15
    if abs_steering > ABS_STEERING_THRESHOLD:
        reward *= 0.8
    return float(reward)
'''
