// name: disease_tagged_videos
// description: Videos whose latest profile carries an open-vocabulary tag of the disease (any disease of the graph, not only the trained labels), most popular (predicted) first. The sibling of disease_videos_by_popularity, which reads the trained head's PREDICTS.
// param: disease_id id - the disease (e.g. ORPHA:790 retinoblastoma, or OVP:glaucoma)
// param: source string[..10] any which source must have tagged it: named, phenotypes, similarity, or any
// param: min_score float[0..1] 0.0 lowest tag score (the best of its sources' scores)
// param: limit int[1..200] 20 how many videos to return

// The disease, by its unique id (constraint entity_id makes this an index seek).
MATCH (d:Entity:Disease {id: $disease_id})
// Only the latest profile of each video speaks for it; TAGGED is the open-vocabulary tag, never PREDICTS.
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[t:TAGGED]->(d)
// One source or any; t.sources lists every source that tagged it.
WHERE t.score >= $min_score AND ($source = 'any' OR $source IN t.sources)
RETURN v.id AS video_id, v.title AS title, v.platform AS platform,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality,
       t.score AS score, t.source AS source, t.sources AS sources, t.rank AS rank
// Highest predicted engagement first; the id breaks ties so pages are stable.
ORDER BY popularity DESC, video_id
LIMIT $limit
