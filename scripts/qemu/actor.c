// The process the attach tests watch: it renames itself with prctl(PR_SET_NAME) (task_rename),
// creates a file and removes it with unlinkat(2) (sys_enter, nr 263), and prints what it did so
// the test can compare the events against the truth:
//   actor pid=<pid> name=<new name> path=<path>
// Usage: actor NEW-NAME PATH
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s NEW-NAME PATH\n", argv[0]);
		return 2;
	}
	int fd = open(argv[2], O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	close(fd);
	if (prctl(PR_SET_NAME, argv[1], 0, 0, 0) != 0) {
		perror("prctl(PR_SET_NAME)");
		return 1;
	}
	if (unlinkat(AT_FDCWD, argv[2], 0) != 0) {
		perror("unlinkat");
		return 1;
	}
	printf("actor pid=%d name=%.15s path=%s\n", (int)getpid(), argv[1], argv[2]);
	fflush(stdout);
	return 0;
}
