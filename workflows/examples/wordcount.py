"""Words counted by a map, a partition and a reduce over a pool (PyMOTW-3's
multiprocessing_wordcount.py with multiprocessing_mapreduce.py)."""

import collections
import glob
import itertools
import multiprocessing
import operator
import os
import string


def input_files():
    return sorted(glob.glob(os.path.join(os.path.dirname(__file__), "texts", "*.rst")))


def file_to_words(filename):
    """Read a file and return a sequence of (word, occurences) values."""
    STOP_WORDS = {
        "a", "an", "and", "are", "as", "be", "by", "for", "if", "in",
        "is", "it", "of", "or", "py", "rst", "that", "the", "to", "with",
    }  # fmt: skip
    TR = str.maketrans({p: " " for p in string.punctuation})
    print(f"{multiprocessing.current_process().name} reading {os.path.basename(filename)}")
    output = []
    with open(filename) as f:
        for line in f:
            if line.lstrip().startswith(".."):  # Skip comment lines
                continue
            line = line.translate(TR)  # Strip punctuation
            for word in line.split():
                word = word.lower()
                if word.isalpha() and word not in STOP_WORDS:
                    output.append((word, 1))
    return output


def partition(mapped_values):
    """Organize the mapped values by their key; returns the keys and their values."""
    partitioned_data = collections.defaultdict(list)
    for key, value in itertools.chain(*mapped_values):
        partitioned_data[key].append(value)
    return list(partitioned_data.items())


def count_words(item):
    """Convert the partitioned data for a word to a tuple containing the word and the number
    of occurences."""
    word, occurences = item
    return (word, sum(occurences))


def report(word_counts):
    word_counts.sort(key=operator.itemgetter(1))
    word_counts.reverse()
    print("\nTOP 20 WORDS BY FREQUENCY\n")
    top20 = word_counts[:20]
    longest = max(len(word) for word, count in top20)
    for word, count in top20:
        print(f"{word:<{longest + 1}}: {count:5}")
