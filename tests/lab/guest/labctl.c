/*
 * labctl: the lab guest's small static helper.
 *   labctl run COMM SCRIPT   rename this process COMM, then write "run SCRIPT" to
 *                            /proc/crashext_lab (staged tasks never come back)
 *   labctl exec PROG ARG...  execv PROG so the task's comm is PROG's basename (not "sh")
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[4096];
	int fd, n;

	if (argc >= 4 && !strcmp(argv[1], "run")) {
		prctl(PR_SET_NAME, argv[2], 0, 0, 0);
		n = snprintf(buf, sizeof(buf), "run %s", argv[3]);
		fd = open("/proc/crashext_lab", O_WRONLY);
		if (fd < 0 || write(fd, buf, n) != n) {
			fprintf(stderr, "LAB-FAILED: %s: %s: %m\n", argv[2], argv[3]);
			return 1;
		}
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "exec")) {
		execv(argv[2], argv + 2);
		fprintf(stderr, "LAB-FAILED: exec %s: %m\n", argv[2]);
		return 1;
	}
	fprintf(stderr, "usage: labctl run COMM SCRIPT | labctl exec PROG ARG...\n");
	return 2;
}
