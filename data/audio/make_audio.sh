#!/bin/sh
# Remake labkit's speech prompts with espeak-ng (Debian package espeak-ng) and sox.
# Every file is mono 16-bit PCM WAV; prompts at 8 kHz (telephone band), the test
# sentence also at 16 kHz for the wideband codecs. Deterministic: same tools, same bytes.
# Usage: sh data/audio/make_audio.sh   (from anywhere)
set -eu
cd "$(dirname "$0")"
VOICE=en-us
SPEED=150          # words per minute
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() {  # say RATE NAME TEXT
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$tmp/$2.raw.wav" "$3"
    # resample with sox's high-quality filter (-D: no dither, so reruns give the same
    # bytes), trim silence below -50 dB at both ends, then pad 50 ms on each side
    sox -q -D "$tmp/$2.raw.wav" -r "$1" -c 1 -b 16 -e signed-integer "$2.wav" \
        silence 1 0.01 -50d reverse silence 1 0.01 -50d reverse pad 0.05 0.05 rate -v "$1"
}

SENTENCE="The quick brown fox jumps over the lazy dog. Please call me back at five five five, one two three four."
say 16000 speech_en "$SENTENCE"
say 8000 speech_en_8k "$SENTENCE"
say 8000 prompt_welcome "Welcome to the lab kit P B X. Please enter the extension you wish to reach."
say 8000 prompt_goodbye "Thank you for calling. Goodbye."
say 8000 prompt_invalid "That is not a valid extension. Please try again."
say 8000 prompt_please_hold "Please hold while I connect your call."
say 8000 vm_greeting "The person you are calling is not available. Please leave a message after the tone."
say 8000 vm_you_have "You have"
say 8000 vm_new_messages "new messages."
say 8000 vm_no_messages "You have no new messages."
say 8000 vm_message_saved "Your message has been saved."
say 8000 conf_joined "You are now in the conference."
for d in 0 1 2 3 4 5 6 7 8 9; do
    set -- zero one two three four five six seven eight nine
    shift "$d"
    say 8000 "digit_$d" "$1"
done
# The prompts the sample dialplan (data/dialplan/extensions.conf) plays, under the names
# Asterisk's sound packs use, so a dialplan written for Asterisk finds them too.
say 8000 hello-world "Hello world."
say 8000 demo-echotest "This is the echo test. What you say will be played back to you. Hang up when you are done."
say 8000 demo-echodone "The echo test is finished."
say 8000 demo-instruct "For the echo test, press one. To hear a prompt, press two. For the operator, press zero."
say 8000 option-is-invalid "That option is invalid."
say 8000 pbx-invalid "I am sorry, that is not a valid extension. Please try again."
say 8000 ss-noservice "The number you have dialed is not in service."
say 8000 vm-goodbye "Goodbye."
say 8000 vm-isunavail "The person you are calling is unavailable."
say 8000 vm-nobodyavail "Nobody is available to take your call."
# a 1 kHz beep, 250 ms
sox -q -D -n -r 8000 -c 1 -b 16 -e signed-integer beep.wav synth 0.25 sine 1000 vol 0.5
ls -l ./*.wav | awk '{s += $5} END {print NR " files, " s " bytes"}'
