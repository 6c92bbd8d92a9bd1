"""Children change what the parent then reads: shared memory, a manager's dict and list, a pipe
(the examples of CPython's multiprocessing docs, "Sharing state between processes" and
"Exchanging objects between processes")."""


def f(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def fill(d, numbers):
    d[1] = "1"
    d["2"] = 2
    d[0.25] = None
    numbers.reverse()


def send(conn):
    conn.send([42, None, "hello"])
    conn.close()
