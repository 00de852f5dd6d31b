"""`fsmove demo`: two embedded FTP servers (aioftp's own), a realistic sample bucket, a
copy interrupted by a crash and resumed, a verification and its HTML report.

``servers`` runs the buckets, ``sample`` fills the old one, ``copy_job`` drives the real
``fsmove copy`` in a child process, ``clever`` prints the same steps for real buckets.
"""
