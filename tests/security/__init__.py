"""Security suite (issue 7): hostile listings never write outside the destination root,
bad input is refused with the documented exit code, and no secret leaks anywhere."""
