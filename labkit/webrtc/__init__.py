"""labkit.webrtc"""
