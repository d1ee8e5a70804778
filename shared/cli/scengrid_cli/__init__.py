"""The scengrid command and what only it needs: the local runtime, the API client, planning and the PD model trainer."""
