"""The HTR augmentation experiment (real only vs real + N synthetic words): ``experiment`` runs it,
``settings`` holds its settings, ``__main__`` is its command line.

    python -m scrabblegan_tf.experiments.htr_augmentation --dataset=dhsd \
        --manual_dir=../shared/data/dhsd --gan_steps=1000 --num_synthetic=20000 --htr_steps=2000 \
        --workdir=runs/htr_aug --results_dir=results/htr_augmentation
"""
